//! The widest vector instructions this CPU has, chosen at run time for the crate's own loops (the
//! GEMMs choose theirs inside `gemm`): the build's baseline is x86-64's SSE2, four lanes.
//! Results do not depend on the choice: Rust never contracts or reorders floating-point
//! operations, so every variant computes the same values.

/// Runs `f` compiled for AVX-512 (F, BW, DQ, VL) when this CPU has it, else for AVX2 with FMA
/// when it has those, else for the baseline. `f` is compiled into each variant only where it is
/// inlined: pass an `#[inline(always)]` closure whose callees are `#[inline(always)]` too.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            #[allow(unsafe_code)]
            // SAFETY: `avx512` only enables instructions this CPU was just found to have.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            #[allow(unsafe_code)]
            // SAFETY: `avx2` only enables instructions this CPU was just found to have.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// `f` compiled for AVX-512. Unsafe to call: the caller checks that the CPU has these features.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
#[allow(unsafe_code)]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f` compiled for AVX2 with FMA. Unsafe to call: the caller checks that the CPU has them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(unsafe_code)]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
