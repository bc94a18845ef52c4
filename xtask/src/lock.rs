//! The exclusive lock on a plan's run folder: two `cargo xtask run` of one plan on one folder
//! would train the same stage at once and write the same files in turn. The lock is the
//! operating system's (`flock`), so a killed run leaves no lock behind: the file it leaves
//! only says who held it last.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The lock file in a plan's run folder.
pub const LOCK_FILE: &str = ".lock";

/// Held while a plan runs; dropping it releases the folder.
pub struct RunLock {
    _file: File,
}

/// Takes the run folder `dir` (which must exist) for this process. When another process holds
/// it: with `wait`, waits until it is released; without, an error naming that process.
///
/// # Errors
/// The folder is in use, or the lock file cannot be opened.
pub fn lock(dir: &Path, wait: bool) -> Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file `{}`; check that the run folder is writable", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = holder(&mut file);
            if !wait {
                bail!(
                    "the run folder `{}` is in use by {holder}; wait for it to finish, or pass --wait to start when it does",
                    dir.display()
                );
            }
            tracing::info!("the run folder `{}` is in use by {holder}; waiting for it", dir.display());
            file.lock().with_context(|| format!("cannot lock `{}`", path.display()))?;
        }
        Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock `{}`", path.display())),
    }
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "pid {} (started at unix time {started})", std::process::id())?;
    file.flush()?;
    Ok(RunLock { _file: file })
}

/// Who holds the lock, as its file says.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() { "another process".to_string() } else { format!("process {text}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder_and_a_stale_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        // What a killed run leaves: the file, without its lock.
        std::fs::write(dir.path().join(LOCK_FILE), "pid 999999 (started at unix time 1)").unwrap();
        let first = lock(dir.path(), false).unwrap();
        let err = lock(dir.path(), false).err().unwrap().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())) && err.contains("--wait"), "{err}");
        drop(first);
        assert!(lock(dir.path(), false).is_ok());
    }
}
