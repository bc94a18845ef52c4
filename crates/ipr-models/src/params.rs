//! Listing a module's parameters by path, as they appear in its saved record.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

#[derive(Default)]
struct PathCollector {
    stack: Vec<String>,
    out: Vec<(String, Vec<usize>)>,
}

impl ModuleVisitor for PathCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push((self.stack.join("."), param.lazy_shape().to_vec()));
    }
}

/// Every float parameter of `module` (running statistics and passports included) with its
/// record path (`features.4.conv.weight`) and shape, in visiting order.
pub fn param_paths<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    let mut collector = PathCollector::default();
    module.visit(&mut collector);
    collector.out
}

/// Collects every float parameter's values as `f32`, in visiting order.
pub(crate) struct ValueCollector<'a>(pub &'a mut Vec<Vec<f32>>);

impl ModuleVisitor for ValueCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data().convert::<f32>();
        self.0.push(data.try_to_vec::<f32>().unwrap_or_default());
    }
}
