//! The false-claim probability: a binomial tail computed in log space, so that it neither
//! underflows for thousands of bits nor loses the small tails that matter.

/// `log10 P[X ≥ k]` for `X ~ Binomial(n, p)`.
///
/// Returns 0 for `k = 0` (certain) and `-inf` for `k > n` (impossible).
pub fn log10_binomial_tail(n: usize, k: usize, p: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > n {
        return f64::NEG_INFINITY;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let ln_choose = |i: usize| ln_factorial(n) - ln_factorial(i) - ln_factorial(n - i);
    let terms: Vec<f64> = (k..=n).map(|i| ln_choose(i) + i as f64 * lp + (n - i) as f64 * lq).collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    (max + sum.ln()) / std::f64::consts::LN_10
}

fn ln_factorial(n: usize) -> f64 {
    (2..=n).map(|i| (i as f64).ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_match_exact_sums() {
        // P[X >= 3], X ~ Bin(4, 1/2) = (4 + 1) / 16.
        assert!((10f64.powf(log10_binomial_tail(4, 3, 0.5)) - 5.0 / 16.0).abs() < 1e-12);
        assert!((log10_binomial_tail(10, 10, 0.5) - (-10.0 * 2f64.log10())).abs() < 1e-9);
        assert_eq!(log10_binomial_tail(10, 0, 0.5), 0.0);
    }

    #[test]
    fn large_n_does_not_underflow() {
        let v = log10_binomial_tail(4096, 4096, 0.5);
        assert!((v + 4096.0 * 2f64.log10()).abs() < 1e-6, "{v}");
        let half = log10_binomial_tail(4096, 2048, 0.5);
        assert!(half > -0.31 && half < -0.29, "{half}");
    }
}
