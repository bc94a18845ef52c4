//! `cargo xtask` end to end, as a user runs it, in one test binary: plans on the real
//! Fashion-MNIST and the user mistakes (`plans`), every attack stage (`attacks`), crash safety
//! (`crash`), dataset downloads (`fetch`), the run folder's lock (`lock`), owner keys, claims and disputes (`owner`), and the workspace's conventions (`tidy`).

mod attacks;
mod crash;
mod fetch;
mod lock;
mod owner;
mod plans;
mod support;
mod tidy;
