//! The data crate's integration tests, one binary: readers on small files written in each
//! official format, the transforms and loader, and the real Fashion-MNIST end to end.

mod fashion_mnist;
mod pipeline;
mod readers;
