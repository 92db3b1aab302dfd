#include "backbones/keras/keras_test_models.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "google/protobuf/util/json_util.h"

namespace panda::keras::testing {
namespace {

void AppendLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) {
    out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

}  // namespace

std::string EncodeModelFile(const std::string& header_json,
                            const std::vector<float>& values) {
  std::string data;
  for (float value : values) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    AppendLittleEndian(bits, 4, &data);
  }
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char byte : data) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;
  }

  std::string file = "PANDAKRS";
  AppendLittleEndian(1, 4, &file);
  AppendLittleEndian(header_json.size(), 4, &file);
  file += header_json;
  AppendLittleEndian(data.size(), 8, &file);
  file += data;
  AppendLittleEndian(hash, 8, &file);
  return file;
}

std::string ModelToJson(const Model& model) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(model, &json).ok()) {
    throw std::runtime_error("cannot write the model as JSON");
  }
  return json;
}

std::string WriteTestFile(const std::string& name, const std::string& bytes) {
  const char* folder = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(folder != nullptr ? folder : "/tmp") + "/" + name;
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!stream) throw std::runtime_error("cannot write " + path);
  return path;
}

ModelBuilder::ModelBuilder(const std::string& name, int height, int width,
                           int channels) {
  model_.set_name(name);
  model_.set_source("test");
  model_.add_input_shape(height);
  model_.add_input_shape(width);
  model_.add_input_shape(channels);
  AddLayer("InputLayer", "input", {});
}

Layer* ModelBuilder::AddLayer(const std::string& class_name,
                              const std::string& name,
                              const std::vector<std::string>& inbound) {
  Layer* layer = model_.add_layers();
  layer->set_class_name(class_name);
  layer->set_name(name);
  for (const std::string& input : inbound) layer->add_inbound(input);
  return layer;
}

void ModelBuilder::AddWeight(const std::string& layer, const std::string& variable,
                             const std::vector<int64_t>& shape, float low,
                             float high) {
  Weight* weight = model_.add_weights();
  weight->set_name(layer + "/" + variable);
  int64_t count = 1;
  for (int64_t dim : shape) {
    weight->add_shape(dim);
    count *= dim;
  }
  std::uniform_real_distribution<float> distribution(low, high);
  std::vector<float>& values = values_[weight->name()];
  for (int64_t i = 0; i < count; ++i) values.push_back(distribution(random_));
}

std::vector<float> ModelBuilder::ConcatenatedValues() const {
  std::vector<float> all;
  for (const Weight& weight : model_.weights()) {
    const std::vector<float>& values = values_.at(weight.name());
    all.insert(all.end(), values.begin(), values.end());
  }
  return all;
}

std::string ModelBuilder::Encode() const {
  return EncodeModelFile(ModelToJson(model_), ConcatenatedValues());
}

namespace {

void SetPair(google::protobuf::RepeatedField<int32_t>* field, int first,
             int second) {
  field->Clear();
  field->Add(first);
  field->Add(second);
}

Layer* AddConvolution(ModelBuilder& builder, const std::string& class_name,
                      const std::string& name, const std::string& inbound,
                      int kernel, int stride, const std::string& padding) {
  Layer* layer = builder.AddLayer(class_name, name, {inbound});
  SetPair(layer->mutable_kernel_size(), kernel, kernel);
  SetPair(layer->mutable_strides(), stride, stride);
  SetPair(layer->mutable_dilation_rate(), 1, 1);
  layer->set_padding(padding);
  layer->set_activation("linear");
  layer->set_use_bias(true);
  return layer;
}

Layer* AddPooling(ModelBuilder& builder, const std::string& class_name,
                  const std::string& name, const std::string& inbound, int pool,
                  int stride, const std::string& padding) {
  Layer* layer = builder.AddLayer(class_name, name, {inbound});
  SetPair(layer->mutable_pool_size(), pool, pool);
  SetPair(layer->mutable_strides(), stride, stride);
  layer->set_padding(padding);
  return layer;
}

void AddBatchNormalization(ModelBuilder& builder, const std::string& name,
                           const std::string& inbound, int channels,
                           float epsilon, bool scale, float beta_range) {
  Layer* layer = builder.AddLayer("BatchNormalization", name, {inbound});
  layer->set_epsilon(epsilon);
  layer->set_center(true);
  layer->set_scale(scale);
  layer->set_axis(-1);
  if (scale) builder.AddWeight(name, "gamma", {channels}, 0.5f, 1.5f);
  builder.AddWeight(name, "beta", {channels}, -beta_range, beta_range);
  builder.AddWeight(name, "moving_mean", {channels});
  builder.AddWeight(name, "moving_variance", {channels}, 0.5f, 1.5f);
}

}  // namespace

ModelBuilder TinyModel() {
  ModelBuilder builder("tiny", 7, 6, 3);

  Layer* pad = builder.AddLayer("ZeroPadding2D", "pad", {"input"});
  for (int side : {0, 1, 1, 0}) pad->add_zero_padding(side);  // -> 8x7x3

  // "same" with stride 2 on 8x7: 1 row of padding (bottom), 2 columns (1+1).
  Layer* conv_a = AddConvolution(builder, "Conv2D", "conv_a", "pad", 3, 2, "same");
  conv_a->set_filters(4);
  builder.AddWeight("conv_a", "kernel", {3, 3, 3, 4});
  builder.AddWeight("conv_a", "bias", {4});  // -> 4x4x4

  // A wide beta range pushes values past both ends of ReLU6.
  AddBatchNormalization(builder, "bn_a", "conv_a", 4, 0.01f, /*scale=*/true,
                        /*beta_range=*/8.0f);
  Layer* relu6 = builder.AddLayer("ReLU", "relu6", {"bn_a"});
  relu6->set_max_value(6);
  relu6->set_negative_slope(0);
  relu6->set_threshold(0);

  Layer* dw = AddConvolution(builder, "DepthwiseConv2D", "dw", "relu6", 3, 1, "same");
  dw->set_depth_multiplier(2);
  builder.AddWeight("dw", "depthwise_kernel", {3, 3, 4, 2});
  builder.AddWeight("dw", "bias", {8});  // -> 4x4x8
  AddBatchNormalization(builder, "bn_b", "dw", 8, 0.001f, /*scale=*/false,
                        /*beta_range=*/0.5f);

  Layer* proj = AddConvolution(builder, "Conv2D", "proj", "relu6", 1, 1, "valid");
  proj->set_filters(8);
  proj->set_use_bias(false);
  proj->set_activation("relu");
  builder.AddWeight("proj", "kernel", {1, 1, 4, 8});

  builder.AddLayer("Add", "sum", {"bn_b", "proj"});
  Layer* leaky = builder.AddLayer("ReLU", "leaky", {"sum"});
  leaky->set_negative_slope(0.1f);
  leaky->set_threshold(0.5f);

  // "same" with stride 2 on 4x4: 1 pixel of padding, after.
  AddPooling(builder, "MaxPooling2D", "max", "leaky", 3, 2, "same");
  AddPooling(builder, "AveragePooling2D", "avg", "leaky", 3, 2, "same");
  // "same" with stride 1: 1 pixel on each side, left out of the mean.
  AddPooling(builder, "AveragePooling2D", "avg3", "leaky", 3, 1, "same");

  Layer* dil = AddConvolution(builder, "Conv2D", "dil", "avg3", 3, 1, "same");
  SetPair(dil->mutable_dilation_rate(), 2, 2);
  dil->set_filters(4);
  dil->set_activation("sigmoid");
  builder.AddWeight("dil", "kernel", {3, 3, 8, 4});
  builder.AddWeight("dil", "bias", {4});

  // Keras's defaults: strides = pool_size, padding "valid".
  Layer* sub = builder.AddLayer("MaxPooling2D", "sub", {"dil"});
  SetPair(sub->mutable_pool_size(), 2, 2);  // -> 2x2x4

  Layer* cat = builder.AddLayer("Concatenate", "cat", {"max", "avg", "sub"});
  cat->set_axis(-1);  // -> 2x2x20
  Layer* act = builder.AddLayer("Activation", "act", {"cat"});
  act->set_activation("tanh");

  Layer* head_pool = builder.AddLayer("AveragePooling2D", "head_pool", {"act"});
  SetPair(head_pool->mutable_pool_size(), 1, 2);
  SetPair(head_pool->mutable_strides(), 1, 2);
  head_pool->set_padding("valid");  // -> 2x1x20
  builder.AddLayer("Flatten", "flat", {"head_pool"});  // -> 40

  Layer* hidden = builder.AddLayer("Dense", "hidden", {"flat"});
  hidden->set_units(6);
  hidden->set_activation("relu");
  hidden->set_use_bias(true);
  builder.AddWeight("hidden", "kernel", {40, 6});
  builder.AddWeight("hidden", "bias", {6});
  builder.AddLayer("Dropout", "drop", {"hidden"})->set_rate(0.5f);
  Layer* out = builder.AddLayer("Dense", "out", {"drop"});
  out->set_units(3);
  out->set_activation("softmax");
  out->set_use_bias(true);
  builder.AddWeight("out", "kernel", {6, 3});
  builder.AddWeight("out", "bias", {3});
  return builder;
}

}  // namespace panda::keras::testing
