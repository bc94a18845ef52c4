//! The training crate's integration tests, one binary: the one training loop (learning,
//! signatures, resume, damaged checkpoints), its epoch hook, and the private-passport step.
//!
//! burn's CPU device draws from one random generator per process, and several tests compare two
//! runs from the same seed, so every test holds [`serial`] while it runs.

mod private;
mod probe;
mod training;

/// Held by every test of this binary: no other test draws random numbers meanwhile.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
