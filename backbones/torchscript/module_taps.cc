#include "backbones/torchscript/module_taps.h"

#include <atomic>
#include <map>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "torch/csrc/jit/api/function_impl.h"
#include "torch/csrc/jit/ir/ir.h"

namespace panda::torchscript {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Calls of `self.<child>.forward(...)` in `block`: those directly in it go
// to `direct`, those inside branches or loops are counted in `nested`.
void FindChildCalls(torch::jit::Block* block, Value* self, const std::string& child,
                    bool inside_control_flow, std::vector<Node*>* direct, int* nested) {
  for (Node* node : block->nodes()) {
    if (node->kind() == c10::prim::CallMethod && node->s(c10::attr::name) == "forward") {
      Node* receiver = node->input(0)->node();
      if (receiver->kind() == c10::prim::GetAttr && receiver->s(c10::attr::name) == child &&
          receiver->input(0) == self) {
        if (inside_control_flow) {
          ++*nested;
        } else {
          direct->push_back(node);
        }
      }
    }
    for (torch::jit::Block* inner : node->blocks()) {
      FindChildCalls(inner, self, child, /*inside_control_flow=*/true, direct, nested);
    }
  }
}

// Finds a call of a method of `self` itself (such as torchvision ResNet's
// forward calling self._forward_impl) in `block` or its sub-blocks.
Node* FindSelfCall(torch::jit::Block* block, Value* self) {
  for (Node* node : block->nodes()) {
    if (node->kind() == c10::prim::CallMethod && node->input(0) == self) return node;
    for (torch::jit::Block* inner : node->blocks()) {
      if (Node* found = FindSelfCall(inner, self)) return found;
    }
  }
  return nullptr;
}

// Replaces calls of `module`'s own methods in `graph` by their bodies, so
// that the submodule calls they make become visible. TorchScript forbids
// recursion, so this ends.
absl::Status InlineSelfCalls(torch::jit::Module& module, Graph& graph) {
  Value* self = graph.inputs()[0];
  while (Node* call = FindSelfCall(graph.block(), self)) {
    const std::string name = call->s(c10::attr::name);
    c10::optional<torch::jit::Method> method = module.find_method(name);
    if (!method.has_value()) {
      return absl::InternalError(absl::StrCat("forward calls an unknown method ", name));
    }
    // Its own graph: the optimized graph has the submodule calls inlined.
    torch::jit::GraphFunction& function = torch::jit::toGraphFunction(method->function());
    torch::jit::inlineCallTo(call, &function, function.graph().get());
  }
  return absl::OkStatus();
}

std::string ChildNames(const torch::jit::Module& module) {
  std::vector<std::string> names;
  for (const torch::jit::NameModule& child : module.named_children()) {
    names.push_back(child.name);
  }
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

std::string NewMethodName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("__panda_taps_", counter++);
}

// Inserts a clone of `value` right after the node that computes it.
Value* CloneAfter(Graph& graph, Value* value, Node* producer) {
  torch::jit::WithInsertPoint guard(producer->next());
  return graph.insert(c10::aten::clone, {value});
}

// `paths` are split into components; `prefix` is the dotted path of
// `module` for messages ("" for the root).
absl::StatusOr<std::string> AddMethod(torch::jit::Module& module, const std::string& prefix,
                                      const std::vector<std::vector<std::string>>& paths) {
  const std::string module_name =
      prefix.empty() ? "the module"
                     : absl::StrCat("\"", prefix.substr(0, prefix.size() - 1), "\"");
  c10::optional<torch::jit::Method> forward = module.find_method("forward");
  if (!forward.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(module_name, " has no forward method"));
  }
  std::shared_ptr<Graph> graph = forward->graph()->copy();
  PANDA_RETURN_IF_ERROR(InlineSelfCalls(module, *graph));
  Value* self = graph->inputs()[0];
  if (graph->outputs().size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("forward of ", module_name, " does not return exactly one value"));
  }

  std::vector<std::string> children;
  std::map<std::string, std::vector<size_t>> paths_by_child;
  for (size_t i = 0; i < paths.size(); ++i) {
    auto [entry, inserted] = paths_by_child.try_emplace(paths[i][0]);
    if (inserted) children.push_back(paths[i][0]);
    entry->second.push_back(i);
  }

  std::vector<Value*> tap_values(paths.size(), nullptr);
  for (const std::string& child : children) {
    const std::string child_path = absl::StrCat(prefix, child);
    if (!module.hasattr(child) || !module.attr(child).isModule()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no submodule \"", child_path, "\": the submodules of ", module_name, " are ",
          ChildNames(module)));
    }
    std::vector<Node*> calls;
    int nested = 0;
    FindChildCalls(graph->block(), self, child, false, &calls, &nested);
    if (calls.size() != 1 || nested > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "submodule \"", child_path, "\" cannot be tapped: forward of ", module_name,
          " calls it ", calls.size(), " times directly and ", nested,
          " times inside branches or loops, but a tap needs exactly one direct call"
          " (a module frozen by torch.jit.freeze has none)"));
    }
    Node* call = calls[0];
    Value* child_output = call->output();
    Node* producer = call;

    std::vector<std::vector<std::string>> deeper;
    std::vector<size_t> deeper_indices;
    for (size_t index : paths_by_child[child]) {
      if (paths[index].size() > 1) {
        deeper.emplace_back(paths[index].begin() + 1, paths[index].end());
        deeper_indices.push_back(index);
      }
    }
    if (!deeper.empty()) {
      torch::jit::Module child_module = module.attr(child).toModule();
      PANDA_ASSIGN_OR_RETURN(const std::string child_method,
                             AddMethod(child_module, absl::StrCat(child_path, "."), deeper));
      const c10::TypePtr result_type = torch::jit::toGraphFunction(
          child_module.get_method(child_method).function()).graph()->outputs()[0]->type();

      torch::jit::WithInsertPoint guard(call);
      Node* tapped_call = graph->insertNode(graph->create(c10::prim::CallMethod, call->inputs()));
      tapped_call->s_(c10::attr::name, child_method);
      tapped_call->output()->setType(result_type);
      Node* unpack = graph->insertNode(graph->createTupleUnpack(tapped_call->output()));
      call->output()->replaceAllUsesWith(unpack->output(0));
      call->destroy();
      child_output = unpack->output(0);
      producer = unpack;
      for (size_t j = 0; j < deeper_indices.size(); ++j) {
        tap_values[deeper_indices[j]] = unpack->output(j + 1);
      }
    }

    for (size_t index : paths_by_child[child]) {
      if (paths[index].size() != 1) continue;
      if (!child_output->type()->isSubtypeOf(*c10::TensorType::get())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "submodule \"", child_path, "\" returns ", child_output->type()->repr_str(),
            ", but a tap must be a tensor"));
      }
      tap_values[index] = CloneAfter(*graph, child_output, producer);
    }
  }

  {
    torch::jit::WithInsertPoint guard(graph->return_node());
    std::vector<Value*> returned = {graph->outputs()[0]};
    returned.insert(returned.end(), tap_values.begin(), tap_values.end());
    Node* tuple = graph->insertNode(graph->createTuple(returned));
    graph->eraseOutput(0);
    graph->registerOutput(tuple->output());
  }

  const std::string name = NewMethodName();
  const c10::ClassTypePtr type = module.type();
  torch::jit::Function* function = type->compilation_unit()->create_function(
      c10::QualifiedName(*type->name(), name), graph);
  type->addMethod(function);
  return name;
}

}  // namespace

absl::StatusOr<std::string> AddTapMethod(torch::jit::Module& module,
                                         const std::vector<std::string>& paths) {
  std::vector<std::vector<std::string>> split;
  for (const std::string& path : paths) {
    std::vector<std::string> parts = absl::StrSplit(path, '.');
    for (const std::string& part : parts) {
      if (part.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid submodule path \"", path, "\": empty component"));
      }
    }
    split.push_back(std::move(parts));
  }
  try {
    return AddMethod(module, "", split);
  } catch (const c10::Error& error) {
    const absl::string_view message = error.what_without_backtrace();
    return absl::InternalError(absl::StrCat("adding a tap method failed: ",
                                            message.substr(0, message.find('\n'))));
  }
}

}  // namespace panda::torchscript
