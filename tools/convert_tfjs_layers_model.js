#!/usr/bin/env node
// Converts a Keras layers model shipped by the npm package nsfwjs (model.min.js plus
// group1-shardNofM.min.js) into one .pkm file that the C++ side reads:
//
//   8 bytes   ASCII magic "PANDAKRS"
//   uint32    format version (1), little-endian
//   uint32    byte length J of the JSON header, little-endian
//   J bytes   UTF-8 JSON of panda.keras.Model (backbones/keras/keras_model.proto)
//   uint64    byte length D of the data section, little-endian
//   D bytes   every weight dequantized to float32 little-endian, in the header's `weights`
//             order, each tensor in its Keras layout
//   uint64    FNV-1a 64-bit hash of the D data bytes, little-endian
//
// Any layer class, config key or weight that the schema cannot represent is an error.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');

const USAGE =
  'usage: node tools/convert_tfjs_layers_model.js <nsfwjs model dir> <output .pkm> [--name NAME]\n' +
  '  <nsfwjs model dir>  e.g. third_party/npm/node_modules/nsfwjs/dist/models/mobilenet_v2\n' +
  '  --name NAME         model name stored in the header (default: the model directory name)';

const MAGIC = 'PANDAKRS';
const FORMAT_VERSION = 1;
const FNV_OFFSET_BASIS = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const UINT64_MASK = 0xffffffffffffffffn;

// Activations that the schema documents for Conv2D, Dense and Activation layers.
const SUPPORTED_ACTIVATIONS = ['linear', 'relu', 'softmax', 'sigmoid', 'tanh'];

// Config keys that do not change inference: training flags, initializers, regularizers,
// constraints, BatchNormalization's momentum and Dropout's noise settings.
const INFERENCE_IRRELEVANT_KEYS = new Set([
  'name', 'trainable', 'momentum', 'noise_shape', 'seed',
  'kernel_initializer', 'bias_initializer', 'depthwise_initializer',
  'gamma_initializer', 'beta_initializer', 'moving_mean_initializer', 'moving_variance_initializer',
  'kernel_regularizer', 'bias_regularizer', 'depthwise_regularizer',
  'gamma_regularizer', 'beta_regularizer', 'activity_regularizer',
  'kernel_constraint', 'bias_constraint', 'depthwise_constraint', 'gamma_constraint', 'beta_constraint',
]);

class UsageError extends Error {}

// Reads one layer's Keras config, remembering which keys were read so that
// rejectUnreadKeys() can report any key that the conversion would otherwise drop.
class LayerConfig {
  constructor(layer, file) {
    this.layer = layer;
    this.file = file;
    this.config = layer.config || {};
    this.readKeys = new Set();
  }

  fail(message) {
    throw new Error(`${this.file}: layer '${this.layer.name}' (${this.layer.class_name}): ${message}`);
  }

  has(key) {
    return key in this.config;
  }

  value(key) {
    if (!this.has(key)) this.fail(`config is missing '${key}'`);
    this.readKeys.add(key);
    return this.config[key];
  }

  int(key) {
    const value = this.value(key);
    if (!Number.isInteger(value) || Math.abs(value) > 0x7fffffff) {
      this.fail(`config '${key}' must be a 32-bit integer, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  number(key) {
    const value = this.value(key);
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.fail(`config '${key}' must be a finite number, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  bool(key) {
    const value = this.value(key);
    if (typeof value !== 'boolean') this.fail(`config '${key}' must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  oneOf(key, allowed) {
    const value = this.value(key);
    if (!allowed.includes(value)) {
      this.fail(`config '${key}' = ${JSON.stringify(value)} is not supported. Expected one of ${JSON.stringify(allowed)}`);
    }
    return value;
  }

  // Reads a 2-D size such as kernel_size or strides, stored as [height, width] or one int.
  pair(key) {
    const value = this.value(key);
    const pair = Number.isInteger(value) ? [value, value] : value;
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((v) => Number.isInteger(v) && v > 0)) {
      this.fail(`config '${key}' must be a positive int or a pair of them, got ${JSON.stringify(value)}`);
    }
    return pair;
  }

  // Reads ZeroPadding2D's padding as [top, bottom, left, right]. Keras accepts one int for
  // all sides, [height, width] for symmetric padding, or [[top, bottom], [left, right]].
  zeroPadding(key) {
    const value = this.value(key);
    let sides = null;
    if (Number.isInteger(value)) {
      sides = [value, value, value, value];
    } else if (Array.isArray(value) && value.length === 2 && value.every(Number.isInteger)) {
      sides = [value[0], value[0], value[1], value[1]];
    } else if (Array.isArray(value) && value.length === 2 &&
               value.every((side) => Array.isArray(side) && side.length === 2)) {
      sides = [value[0][0], value[0][1], value[1][0], value[1][1]];
    }
    if (sides === null || !sides.every((v) => Number.isInteger(v) && v >= 0)) {
      this.fail(`config '${key}' = ${JSON.stringify(value)} is not a valid 2-D zero padding`);
    }
    return sides;
  }

  // Rejects an optional key whose value is not `requiredValue`.
  expect(key, requiredValue) {
    if (this.has(key) && this.value(key) !== requiredValue) {
      this.fail(`config '${key}' = ${JSON.stringify(this.config[key])} is not supported. Only ${JSON.stringify(requiredValue)} is`);
    }
  }

  rejectUnreadKeys() {
    for (const key of Object.keys(this.config)) {
      if (!this.readKeys.has(key) && !INFERENCE_IRRELEVANT_KEYS.has(key)) {
        this.fail(`config '${key}' = ${JSON.stringify(this.config[key])} cannot be represented in panda.keras.Layer`);
      }
    }
  }
}

function readConvolution(config, fields) {
  fields.kernelSize = config.pair('kernel_size');
  fields.strides = config.pair('strides');
  fields.padding = config.oneOf('padding', ['same', 'valid']);
  fields.dilationRate = config.pair('dilation_rate');
  fields.activation = config.oneOf('activation', SUPPORTED_ACTIVATIONS);
  fields.useBias = config.bool('use_bias');
}

function readPooling(config, fields) {
  fields.poolSize = config.pair('pool_size');
  // Keras uses the pool size as stride when strides is null.
  fields.strides = config.value('strides') === null ? fields.poolSize : config.pair('strides');
  fields.padding = config.oneOf('padding', ['same', 'valid']);
}

// Supported Keras layer classes: `read` copies the config into panda.keras.Layer fields and
// `variables` lists the weights the layer owns, in the names TF.js gives them.
const LAYER_TYPES = {
  InputLayer: {
    read(config, fields, model) {
      config.expect('sparse', false);
      const shape = config.value('batch_input_shape');
      if (!Array.isArray(shape) || shape.length !== 4 || shape[0] !== null ||
          !shape.slice(1).every((v) => Number.isInteger(v) && v > 0)) {
        config.fail(`batch_input_shape must be [null, height, width, channels], got ${JSON.stringify(shape)}`);
      }
      if (model.inputShape) config.fail('the model has more than one InputLayer');
      model.inputShape = shape.slice(1);
    },
    variables: () => [],
  },
  ZeroPadding2D: {
    read(config, fields) {
      fields.zeroPadding = config.zeroPadding('padding');
    },
    variables: () => [],
  },
  Conv2D: {
    read(config, fields) {
      fields.filters = config.int('filters');
      readConvolution(config, fields);
    },
    variables: (fields) => (fields.useBias ? ['kernel', 'bias'] : ['kernel']),
  },
  DepthwiseConv2D: {
    read(config, fields) {
      fields.depthMultiplier = config.int('depth_multiplier');
      readConvolution(config, fields);
    },
    variables: (fields) => (fields.useBias ? ['depthwise_kernel', 'bias'] : ['depthwise_kernel']),
  },
  BatchNormalization: {
    read(config, fields) {
      fields.epsilon = config.number('epsilon');
      fields.center = config.bool('center');
      fields.scale = config.bool('scale');
      fields.axis = config.int('axis');
    },
    variables: (fields) => [
      ...(fields.scale ? ['gamma'] : []),
      ...(fields.center ? ['beta'] : []),
      'moving_mean',
      'moving_variance',
    ],
  },
  ReLU: {
    read(config, fields) {
      const maxValue = config.value('max_value');
      if (maxValue !== null) fields.maxValue = config.number('max_value');
      if (config.has('negative_slope')) fields.negativeSlope = config.number('negative_slope');
      if (config.has('threshold')) fields.threshold = config.number('threshold');
    },
    variables: () => [],
  },
  Activation: {
    read(config, fields) {
      fields.activation = config.oneOf('activation', SUPPORTED_ACTIVATIONS);
    },
    variables: () => [],
  },
  Add: { read() {}, variables: () => [] },
  Concatenate: {
    read(config, fields) {
      fields.axis = config.int('axis');
    },
    variables: () => [],
  },
  AveragePooling2D: { read: readPooling, variables: () => [] },
  MaxPooling2D: { read: readPooling, variables: () => [] },
  Flatten: { read() {}, variables: () => [] },
  Dense: {
    read(config, fields) {
      fields.units = config.int('units');
      fields.activation = config.oneOf('activation', SUPPORTED_ACTIVATIONS);
      fields.useBias = config.bool('use_bias');
    },
    variables: (fields) => (fields.useBias ? ['kernel', 'bias'] : ['kernel']),
  },
  Dropout: {
    read(config, fields) {
      fields.rate = config.number('rate');
    },
    variables: () => [],
  },
};

// Returns the names of the layers feeding `layer`, from Keras 2 inbound_nodes
// ([[[layer_name, node_index, tensor_index, kwargs], ...]]).
function readInboundNames(layer, file) {
  const where = `${file}: layer '${layer.name}'`;
  const nodes = layer.inbound_nodes;
  if (!Array.isArray(nodes) || nodes.length > 1) {
    throw new Error(`${where}: inbound_nodes must list at most one call (shared layers are not supported), got ${JSON.stringify(nodes)}`);
  }
  if (nodes.length === 0) return [];
  return nodes[0].map((entry) => {
    const [name, nodeIndex, tensorIndex, kwargs] = entry;
    if (typeof name !== 'string' || nodeIndex !== 0 || tensorIndex !== 0 ||
        (kwargs !== undefined && Object.keys(kwargs).length !== 0)) {
      throw new Error(`${where}: inbound entry ${JSON.stringify(entry)} is not supported. Expected [name, 0, 0, {}]`);
    }
    return name;
  });
}

function convertLayer(layer, file, model) {
  const type = LAYER_TYPES[layer.class_name];
  if (!type) {
    throw new Error(`${file}: layer '${layer.name}' has class ${layer.class_name}, which panda.keras.Layer cannot represent. ` +
                    `Supported classes are ${Object.keys(LAYER_TYPES).join(', ')}`);
  }
  const config = new LayerConfig(layer, file);
  const fields = { name: layer.name, className: layer.class_name, inbound: readInboundNames(layer, file) };
  config.expect('data_format', 'channels_last');
  config.expect('dtype', 'float32');
  type.read(config, fields, model);
  config.rejectUnreadKeys();
  return { fields, variables: type.variables(fields) };
}

// Loads a CommonJS module of the nsfwjs bundle and returns its export, or the export's
// `default` property when it has one.
function requireBundledModule(file) {
  if (!fs.existsSync(file)) throw new Error(`file not found: ${file}`);
  let exported;
  try {
    exported = require(path.resolve(file));
  } catch (err) {
    throw new Error(`failed to load ${file}: ${err.message}`);
  }
  return exported && exported.default !== undefined ? exported.default : exported;
}

// Reads model.min.js and the weight shards of an nsfwjs model directory. Returns the
// Keras topology, the flattened weight specs and all shard bytes concatenated in manifest order.
function readModelFiles(modelDir) {
  if (!fs.existsSync(modelDir)) {
    throw new Error(`model directory not found: ${modelDir}. Install nsfwjs with 'npm ci --prefix third_party/npm'`);
  }
  const modelFile = path.join(modelDir, 'model.min.js');
  const model = requireBundledModule(modelFile);
  if (!model || typeof model.modelTopology !== 'object' || !Array.isArray(model.weightsManifest)) {
    throw new Error(`${modelFile}: export is missing modelTopology or weightsManifest`);
  }

  const weightSpecs = [];
  const groupBuffers = [];
  for (const group of model.weightsManifest) {
    const shardFiles = group.paths.map((shardPath) => path.join(modelDir, `${shardPath}.min.js`));
    const shards = shardFiles.map((file) => {
      const base64 = requireBundledModule(file);
      if (typeof base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
        throw new Error(`${file}: export is not a base64 string`);
      }
      return Buffer.from(base64, 'base64');
    });
    const groupBytes = Buffer.concat(shards);
    const expectedBytes = group.weights.reduce((sum, spec) => sum + storedByteLength(spec, modelFile), 0);
    if (groupBytes.length !== expectedBytes) {
      throw new Error(`${shardFiles.join(', ')}: shards hold ${groupBytes.length} bytes but the weightsManifest ` +
                      `in ${modelFile} describes ${expectedBytes}`);
    }
    weightSpecs.push(...group.weights);
    groupBuffers.push(groupBytes);
  }
  return { modelFile, topology: model.modelTopology, weightSpecs, weightBytes: Buffer.concat(groupBuffers) };
}

function elementCount(shape) {
  return shape.reduce((count, dim) => count * dim, 1);
}

// Returns the number of bytes a weight occupies in the shards.
function storedByteLength(spec, modelFile) {
  if (spec.dtype !== 'float32') {
    throw new Error(`${modelFile}: weight '${spec.name}' has dtype ${spec.dtype}, but only float32 weights are supported`);
  }
  if (!Array.isArray(spec.shape) || !spec.shape.every((dim) => Number.isInteger(dim) && dim >= 0)) {
    throw new Error(`${modelFile}: weight '${spec.name}' has invalid shape ${JSON.stringify(spec.shape)}`);
  }
  const bytesPerValue = { none: 4, uint8: 1, uint16: 2 }[spec.quantization ? spec.quantization.dtype : 'none'];
  if (bytesPerValue === undefined) {
    throw new Error(`${modelFile}: weight '${spec.name}' uses quantization dtype ${spec.quantization.dtype}, but ` +
                    'only uint8, uint16 and unquantized float32 are supported');
  }
  return elementCount(spec.shape) * bytesPerValue;
}

// Dequantizes every weight into float32 little-endian bytes. Quantized values are computed
// as byte * scale + min in double precision and then rounded to float32, the same arithmetic
// as decodeWeight in @tensorflow/tfjs-core 4.22.0, so the values match what TF.js loads.
function dequantizeWeights(weightSpecs, weightBytes, modelFile) {
  const totalElements = weightSpecs.reduce((sum, spec) => sum + elementCount(spec.shape), 0);
  const data = Buffer.alloc(4 * totalElements);
  const source = new DataView(weightBytes.buffer, weightBytes.byteOffset, weightBytes.byteLength);
  const target = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let sourceOffset = 0;
  let targetOffset = 0;
  for (const spec of weightSpecs) {
    const count = elementCount(spec.shape);
    const quantization = spec.quantization;
    if (quantization && !(Number.isFinite(quantization.min) && Number.isFinite(quantization.scale))) {
      throw new Error(`${modelFile}: weight '${spec.name}' has quantization without a finite min and scale`);
    }
    for (let i = 0; i < count; i++) {
      let value;
      if (!quantization) {
        value = source.getFloat32(sourceOffset + 4 * i, true);
      } else if (quantization.dtype === 'uint8') {
        value = source.getUint8(sourceOffset + i) * quantization.scale + quantization.min;
      } else {
        value = source.getUint16(sourceOffset + 2 * i, true) * quantization.scale + quantization.min;
      }
      target.setFloat32(targetOffset + 4 * i, value, true);
    }
    sourceOffset += storedByteLength(spec, modelFile);
    targetOffset += 4 * count;
  }
  return data;
}

function fnv1a64(bytes) {
  let hash = FNV_OFFSET_BASIS;
  for (let i = 0; i < bytes.length; i++) {
    hash ^= BigInt(bytes[i]);
    hash = (hash * FNV_PRIME) & UINT64_MASK;
  }
  return hash;
}

// Returns the class names in output order from nsfwjs's dist/cjs/nsfw_classes.js, which
// maps output indices to names.
function readClassNames(modelDir) {
  const file = path.join(modelDir, '..', '..', 'cjs', 'nsfw_classes.js');
  const exported = requireBundledModule(file);
  const classes = exported && exported.NSFW_CLASSES;
  if (!classes || typeof classes !== 'object') throw new Error(`${file}: export has no NSFW_CLASSES`);
  const names = [];
  for (let index = 0; index in classes; index++) names.push(String(classes[index]));
  if (names.length === 0 || names.length !== Object.keys(classes).length) {
    throw new Error(`${file}: NSFW_CLASSES keys must be 0..n-1, got ${JSON.stringify(Object.keys(classes))}`);
  }
  return names;
}

// Returns e.g. "npm nsfwjs@4.2.1 dist/models/mobilenet_v2" from the package.json three levels up.
function describeSource(modelDir) {
  const packageRoot = path.resolve(modelDir, '..', '..', '..');
  const packageFile = path.join(packageRoot, 'package.json');
  if (!fs.existsSync(packageFile)) throw new Error(`file not found: ${packageFile} (expected the nsfwjs package root)`);
  const packageJson = JSON.parse(fs.readFileSync(packageFile, 'utf8'));
  const relativeDir = path.relative(packageRoot, path.resolve(modelDir)).split(path.sep).join('/');
  return `npm ${packageJson.name}@${packageJson.version} ${relativeDir}`;
}

// Builds the panda.keras.Model header (without weights) from a Keras functional topology.
function convertTopology(topology, modelFile) {
  const modelConfig = topology.model_config;
  if (!modelConfig) {
    throw new Error(`${modelFile}: modelTopology has no model_config, so it is a graph model rather than a Keras layers model`);
  }
  if (!['Model', 'Functional'].includes(modelConfig.class_name)) {
    throw new Error(`${modelFile}: model class ${modelConfig.class_name} is not supported. Expected a functional Model`);
  }
  const { layers, input_layers: inputLayers, output_layers: outputLayers } = modelConfig.config;
  if (!Array.isArray(layers) || layers.length === 0) throw new Error(`${modelFile}: model_config has no layers`);
  if (!Array.isArray(inputLayers) || inputLayers.length !== 1 || !Array.isArray(outputLayers) || outputLayers.length !== 1) {
    throw new Error(`${modelFile}: the model must have exactly one input and one output, got ` +
                    `inputs ${JSON.stringify(inputLayers)} and outputs ${JSON.stringify(outputLayers)}`);
  }

  const model = { inputShape: null };
  const converted = [];
  const seenNames = new Set();
  for (const layer of layers) {
    const result = convertLayer(layer, modelFile, model);
    for (const inbound of result.fields.inbound) {
      if (!seenNames.has(inbound)) {
        throw new Error(`${modelFile}: layer '${layer.name}' reads '${inbound}', which is not an earlier layer`);
      }
    }
    if (seenNames.has(layer.name)) throw new Error(`${modelFile}: layer name '${layer.name}' occurs twice`);
    seenNames.add(layer.name);
    converted.push(result);
  }

  const first = converted[0].fields;
  const last = converted[converted.length - 1].fields;
  if (first.className !== 'InputLayer' || first.name !== inputLayers[0][0]) {
    throw new Error(`${modelFile}: the first layer must be the model input '${inputLayers[0][0]}', got '${first.name}'`);
  }
  if (last.name !== outputLayers[0][0]) {
    throw new Error(`${modelFile}: the last layer must be the model output '${outputLayers[0][0]}', got '${last.name}'`);
  }
  return { inputShape: model.inputShape, converted };
}

// Checks that the weights are exactly the variables the converted layers own.
function checkWeightNames(converted, weightSpecs, modelFile) {
  const expected = new Set();
  for (const { fields, variables } of converted) {
    for (const variable of variables) expected.add(`${fields.name}/${variable}`);
  }
  const seen = new Set();
  for (const spec of weightSpecs) {
    if (!expected.has(spec.name)) throw new Error(`${modelFile}: weight '${spec.name}' belongs to no variable of a converted layer`);
    if (seen.has(spec.name)) throw new Error(`${modelFile}: weight '${spec.name}' occurs twice`);
    seen.add(spec.name);
  }
  const missing = [...expected].filter((name) => !seen.has(name));
  if (missing.length > 0) throw new Error(`${modelFile}: weightsManifest is missing ${missing.join(', ')}`);
}

function uint32LittleEndian(value) {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return bytes;
}

function uint64LittleEndian(value) {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(value));
  return bytes;
}

// Writes the chunks to `<file>.tmp-<pid>` and renames it, so readers never see a partial file.
function writeFileAtomic(file, chunks) {
  const temporaryFile = `${file}.tmp-${process.pid}`;
  try {
    const descriptor = fs.openSync(temporaryFile, 'w');
    try {
      for (const chunk of chunks) fs.writeSync(descriptor, chunk);
      fs.fsyncSync(descriptor);
    } finally {
      fs.closeSync(descriptor);
    }
    fs.renameSync(temporaryFile, file);
  } catch (err) {
    fs.rmSync(temporaryFile, { force: true });
    throw new Error(`failed to write ${file}: ${err.message}`);
  }
}

function parseArguments(argv) {
  let parsed;
  try {
    parsed = util.parseArgs({ args: argv, options: { name: { type: 'string' } }, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (parsed.positionals.length !== 2) throw new UsageError('expected a model directory and an output file');
  const [modelDir, output] = parsed.positionals;
  return { modelDir, output, name: parsed.values.name || path.basename(path.resolve(modelDir)) };
}

function main(argv) {
  const { modelDir, output, name } = parseArguments(argv);
  const { modelFile, topology, weightSpecs, weightBytes } = readModelFiles(modelDir);
  const { inputShape, converted } = convertTopology(topology, modelFile);
  checkWeightNames(converted, weightSpecs, modelFile);

  const header = {
    name,
    source: describeSource(modelDir),
    inputShape,
    classNames: readClassNames(modelDir),
    layers: converted.map((result) => result.fields),
    weights: weightSpecs.map((spec) => ({ name: spec.name, shape: spec.shape })),
  };
  const outputUnits = header.layers[header.layers.length - 1].units;
  if (outputUnits !== header.classNames.length) {
    throw new Error(`${modelFile}: the output layer has ${outputUnits} units but nsfwjs names ${header.classNames.length} classes`);
  }

  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const data = dequantizeWeights(weightSpecs, weightBytes, modelFile);
  const chunks = [
    Buffer.from(MAGIC, 'ascii'),
    uint32LittleEndian(FORMAT_VERSION),
    uint32LittleEndian(headerBytes.length),
    headerBytes,
    uint64LittleEndian(data.length),
    data,
    uint64LittleEndian(fnv1a64(data)),
  ];
  writeFileAtomic(output, chunks);

  const fileBytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  console.log(`wrote ${output}: model ${name}, ${header.layers.length} layers, ${header.weights.length} weights, ` +
              `${data.length / 4} parameters, ${fileBytes} bytes`);
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`convert_tfjs_layers_model: ${err.message}`);
    if (err instanceof UsageError) {
      console.error(USAGE);
      process.exit(2);
    }
    process.exit(1);
  }
}

module.exports = { readModelFiles, describeSource, writeFileAtomic };
