//! The verifier's integration tests, one binary: verdicts on models trained here (`verdict`)
//! and on state dicts of the PyTorch reference (`reference`, fixtures in `tests/fixtures/`).

mod reference;
mod verdict;
