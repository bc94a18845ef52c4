//! Training settings: the reference recipe of spec §6 by default.

use serde::{Deserialize, Serialize};

use crate::SchemeError;

/// SGD with momentum and weight decay, a multi-step learning-rate schedule, and the sign loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs to train.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Initial learning rate.
    pub lr: f64,
    /// SGD momentum (no dampening, as PyTorch).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Epochs (0-based) at which the learning rate is multiplied by `lr_factor`.
    pub lr_steps: Vec<usize>,
    /// Learning-rate multiplier at each step.
    pub lr_factor: f64,
    /// Weight α of the sign loss.
    pub sign_loss: f64,
    /// Seed of the order, augmentation and every random draw of the run.
    pub seed: u64,
    /// Gradient clipping: each parameter's gradient is scaled down to at most this L2 norm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
}

impl Default for TrainConfig {
    /// The reference recipe: 200 epochs, batch 64, lr 0.01 ×0.1 at 100 and 150, momentum 0.9,
    /// weight decay 1e-4, sign loss 0.1.
    fn default() -> Self {
        Self {
            epochs: 200,
            batch_size: 64,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-4,
            lr_steps: vec![100, 150],
            lr_factor: 0.1,
            sign_loss: 0.1,
            seed: 0,
            grad_clip: None,
        }
    }
}

impl TrainConfig {
    /// The learning rate during `epoch` (0-based).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let steps = self.lr_steps.iter().filter(|&&s| s <= epoch).count();
        self.lr * self.lr_factor.powi(steps as i32)
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`SchemeError::Config`] naming the setting.
    pub fn check(&self) -> Result<(), SchemeError> {
        let fail = |m: &str| Err(SchemeError::Config(m.into()));
        if self.epochs == 0 {
            return fail("epochs must be at least 1");
        }
        if self.batch_size == 0 {
            return fail("batch_size must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return fail("lr must be a positive number");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return fail("momentum must be in [0, 1)");
        }
        if self.weight_decay < 0.0 || self.sign_loss < 0.0 {
            return fail("weight_decay and sign_loss must not be negative");
        }
        if self.grad_clip.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
            return fail("grad_clip must be a positive number");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_schedule() {
        let c = TrainConfig::default();
        assert_eq!(c.lr_at(0), 0.01);
        assert_eq!(c.lr_at(99), 0.01);
        assert!((c.lr_at(100) - 0.001).abs() < 1e-12);
        assert!((c.lr_at(199) - 0.0001).abs() < 1e-12);
    }
}
