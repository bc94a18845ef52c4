//! Walking a module's parameters by record path (`features.4.conv.weight`): one path-tracking
//! visitor and one mapper that every path-aware walk of the workspace goes through.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

/// Sees every float parameter of a module with its record path.
pub trait ParamVisitor {
    /// Called once per float parameter, in visiting order.
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>);
}

/// Rewrites every float parameter of a module, knowing its record path.
pub trait ParamMapper {
    /// Called once per float parameter, in visiting order; returns its replacement.
    fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>>;
}

/// The record path of the module being visited.
#[derive(Default)]
struct PathStack(Vec<String>);

impl PathStack {
    fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    fn exit(&mut self) {
        self.0.pop();
    }
    fn path(&self) -> String {
        self.0.join(".")
    }
}

struct Tracked<T> {
    stack: PathStack,
    inner: T,
}

impl<V: ParamVisitor> ModuleVisitor for Tracked<&mut V> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit(&self.stack.path(), param);
    }
}

impl<P: ParamMapper> ModuleMapper for Tracked<&mut P> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.stack.enter(name);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.inner.map(&self.stack.path(), param)
    }
}

/// Calls `visitor` on every float parameter of `module` with its record path.
pub fn visit_params<M: Module, V: ParamVisitor>(module: &M, visitor: &mut V) {
    module.visit(&mut Tracked { stack: PathStack::default(), inner: visitor });
}

/// `module` with every float parameter replaced by what `mapper` returns for it.
pub fn map_params<M: Module, P: ParamMapper>(module: M, mapper: &mut P) -> M {
    module.map(&mut Tracked { stack: PathStack::default(), inner: mapper })
}

/// The values of a tensor as `f32`, row-major (empty if they cannot be read).
pub fn tensor_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default()
}

/// Every float parameter of `module` (running statistics and passports included) with its
/// record path (`features.4.conv.weight`) and shape, in visiting order.
pub fn param_paths<M: Module>(module: &M) -> Vec<(String, Vec<usize>)> {
    struct Shapes(Vec<(String, Vec<usize>)>);
    impl ParamVisitor for Shapes {
        fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
            self.0.push((path.to_string(), param.lazy_shape().to_vec()));
        }
    }
    let mut shapes = Shapes(Vec::new());
    visit_params(module, &mut shapes);
    shapes.0
}

/// Every float parameter of `module` with its record path, shape and values, in visiting order.
pub fn param_values<M: Module>(module: &M) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    struct Values(Vec<(String, Vec<usize>, Vec<f32>)>);
    impl ParamVisitor for Values {
        fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
            self.0.push((path.to_string(), param.lazy_shape().to_vec(), tensor_values(param.val())));
        }
    }
    let mut values = Values(Vec::new());
    visit_params(module, &mut values);
    values.0
}
