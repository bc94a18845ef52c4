//! Picking the backend device a plan asks for: the one place where a backend is chosen.

use anyhow::{Result, bail};
use burn::prelude::*;

/// The device for a plan's `device` value: `cpu` (burn's flex backend), `cuda`, `cuda:N`
/// (`--features cuda`) or `vulkan` (`--features vulkan`). A GPU device is probed with one small
/// operation so that a missing GPU is an error here, not a panic later.
pub fn select(name: &str) -> Result<Device> {
    let device = match name {
        "cpu" => return Ok(Device::flex()),
        "vulkan" => vulkan()?,
        cuda if cuda == "cuda" || cuda.starts_with("cuda:") => {
            let index = match cuda.strip_prefix("cuda:") {
                Some(n) => n.parse::<usize>().map_err(|_| {
                    anyhow::anyhow!("device = \"{cuda}\": the GPU index must be a number, e.g. \"cuda:0\"")
                })?,
                None => 0,
            };
            cuda_device(index)?
        }
        other => bail!("device = \"{other}\" is not a device; use \"cpu\", \"cuda\", \"cuda:N\" or \"vulkan\""),
    };
    probe(&device, name)?;
    Ok(device)
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Result<Device> {
    bail!(
        "the plan asks for device = \"cuda\", but this build has no CUDA backend; rebuild with \
         `cargo run --release -p xtask --features cuda -- run PLAN` on a machine with internet \
         access (burn's CUDA backend downloads an LLVM bundle when it builds), or set \
         device = \"cpu\" (or \"vulkan\" with --features vulkan)"
    )
}

#[cfg(feature = "vulkan")]
fn vulkan() -> Result<Device> {
    Ok(Device::vulkan(DeviceKind::DiscreteGpu(0)))
}

#[cfg(not(feature = "vulkan"))]
fn vulkan() -> Result<Device> {
    bail!(
        "the plan asks for device = \"vulkan\", but this build has no Vulkan backend; rebuild with \
         `cargo run --release -p xtask --features vulkan -- run PLAN`, or set device = \"cpu\""
    )
}

/// Runs one tiny operation on `device`; a backend that cannot find its GPU panics there, and
/// that panic becomes an error.
fn probe(device: &Device, name: &str) -> Result<()> {
    let device = device.clone();
    survive(name, move || {
        Tensor::<1>::ones([4], &device).sum().into_data();
    })
}

/// Runs `op` with panics silenced; a panic becomes the error saying that no GPU answered for
/// the plan's `device = "{name}"`, and how to go on.
fn survive(name: &str, op: impl FnOnce() + std::panic::UnwindSafe) -> Result<()> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(op);
    std::panic::set_hook(previous);
    if outcome.is_err() {
        bail!(
            "device = \"{name}\": no usable GPU was found (no device, no driver, or the driver \
             refused); check `nvidia-smi` / `vulkaninfo`, or set device = \"cpu\""
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_works_and_bad_names_are_errors() {
        assert!(select("cpu").is_ok());
        let e = select("tpu").unwrap_err().to_string();
        assert!(e.contains("\"cpu\""), "{e}");
        let e = select("cuda:x").unwrap_err().to_string();
        assert!(e.contains("cuda:0") || e.contains("CUDA"), "{e}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_rebuild() {
        let e = select("cuda").unwrap_err().to_string();
        assert!(e.contains("--features cuda") && e.contains("internet"), "{e}");
    }

    #[cfg(not(feature = "vulkan"))]
    #[test]
    fn vulkan_without_the_feature_says_how_to_rebuild() {
        let e = select("vulkan").unwrap_err().to_string();
        assert!(e.contains("device = \"vulkan\"") && e.contains("--features vulkan") && e.contains("device = \"cpu\""), "{e}");
    }

    /// What a GPU backend does when asked for a GPU that is not there (it panics on the first
    /// operation) becomes an error naming the `device` key and the way out.
    #[test]
    fn a_gpu_that_is_not_there_is_a_clear_error() {
        let e = survive("cuda:1", || panic!("no CUDA device 1")).unwrap_err().to_string();
        assert!(e.contains("device = \"cuda:1\"") && e.contains("no usable GPU") && e.contains("nvidia-smi"), "{e}");
        assert!(e.contains("set device = \"cpu\""), "{e}");
        assert!(survive("cpu", || ()).is_ok());
    }
}
