//! The sign loss that writes a signature into the signs of a passport layer's scale γ.

use burn::prelude::*;
use burn::tensor::activation::relu;

/// The hinge margin γ0 of the sign loss.
pub const SIGN_MARGIN: f64 = 0.1;
/// Weight of the `Σ γ²` term that keeps γ from growing without bound.
pub const GAMMA_DECAY: f64 = 1e-5;

/// `L_s = α · Σ_c max(0, γ0 − b_c·γ_c) + 1e-5 · Σ_c γ_c²`.
///
/// # Shapes
/// - `gamma`, `bits`: `[channels]` (`bits` holds ±1)
/// - output: `[1]`
pub fn sign_loss(gamma: Tensor<1>, bits: Tensor<1>, alpha: f64) -> Tensor<1> {
    let hinge = relu(bits.mul(gamma.clone()).neg().add_scalar(SIGN_MARGIN))
        .sum()
        .mul_scalar(alpha);
    hinge.add(gamma.square().sum().mul_scalar(GAMMA_DECAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_and_gradient_on_a_hand_computed_case() {
        let device = Device::flex().autodiff();
        // b·γ = [0.5, -0.2, 0.05, -1.0]: hinge terms [0, 0.3, 0.05, 1.1] → 1.45.
        let gamma = Tensor::<1>::from_floats([0.5, 0.2, 0.05, 1.0], &device).require_grad();
        let bits = Tensor::<1>::from_floats([1.0, -1.0, 1.0, -1.0], &device);
        let loss = sign_loss(gamma.clone(), bits, 0.1);
        let sum_sq = 0.25 + 0.04 + 0.0025 + 1.0;
        let expected = 0.1 * 1.45 + 1e-5 * sum_sq;
        let got = f64::from(loss.clone().into_data().try_to_vec::<f32>().unwrap()[0]);
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");

        let grads = loss.backward();
        let g = gamma.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
        // d/dγ: -α·b where the hinge is active, plus 2e-5·γ.
        let want = [2e-5 * 0.5, 0.1 + 2e-5 * 0.2, -0.1 + 2e-5 * 0.05, 0.1 + 2e-5 * 1.0];
        for (a, b) in g.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{g:?} vs {want:?}");
        }
    }
}
