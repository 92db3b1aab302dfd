#!/usr/bin/env node
// Runs an original nsfwjs Keras model with pure-JavaScript TensorFlow.js (CPU backend) on
// fixed images and writes the outputs as JSON of panda.keras.ReferenceOutputs
// (backbones/keras/keras_model.proto), for parity tests of the C++ port.
//
// The images are Fashion-MNIST test images 0, 1 and 2 (grey, 28x28) and a synthetic 40x32
// colour image whose three channels differ, so a swapped channel order changes the outputs.
// For each image the file stores the uint8 source pixels, the softmax output and `pooled`:
// the global average pooling of the map that feeds the model's last AveragePooling2D layer.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');
const zlib = require('zlib');
const { readModelFiles, describeSource, writeFileAtomic } = require('./convert_tfjs_layers_model.js');

const USAGE =
  'usage: node tools/record_tfjs_reference.js <nsfwjs model dir> <t10k-images-idx3-ubyte.gz> <output .json> [--size N]\n' +
  '  <nsfwjs model dir>  e.g. third_party/npm/node_modules/nsfwjs/dist/models/mobilenet_v2\n' +
  '  --size N            side in pixels that images are resized to (default and only accepted\n' +
  '                      value: the model input size, 224 for mobilenet_v2 and 299 for inception_v3)';

const FASHION_MNIST_INDICES = [0, 1, 2];
const IDX_IMAGES_MAGIC = 0x00000803;

class UsageError extends Error {}

// Loads the @tensorflow/tfjs installed next to nsfwjs, or else the one in third_party/npm.
function loadTensorFlow(modelDir) {
  const searchPaths = [path.resolve(modelDir), path.join(__dirname, '..', 'third_party', 'npm')];
  let modulePath;
  try {
    modulePath = require.resolve('@tensorflow/tfjs', { paths: searchPaths });
  } catch (err) {
    throw new Error(`@tensorflow/tfjs not found from ${searchPaths.join(' or ')}. Install it with 'npm ci --prefix third_party/npm'`);
  }
  return require(modulePath);
}

// Returns the images at `indices` of a gzip'd IDX image file as {name, height, width, channels, pixels}.
function readFashionMnistImages(file, indices) {
  let bytes;
  try {
    bytes = zlib.gunzipSync(fs.readFileSync(file));
  } catch (err) {
    throw new Error(`failed to read gzip'd IDX file ${file}: ${err.message}`);
  }
  if (bytes.length < 16 || bytes.readUInt32BE(0) !== IDX_IMAGES_MAGIC) {
    throw new Error(`${file}: not an IDX image file (expected magic 0x00000803)`);
  }
  const count = bytes.readUInt32BE(4);
  const height = bytes.readUInt32BE(8);
  const width = bytes.readUInt32BE(12);
  const imageBytes = height * width;
  if (bytes.length !== 16 + count * imageBytes) {
    throw new Error(`${file}: invalid IDX file, because the header describes ${count} images of ${height}x${width} ` +
                    `but the file contains ${bytes.length - 16} pixel bytes`);
  }
  return indices.map((index) => {
    if (index >= count) throw new Error(`${file}: image ${index} is requested but the file contains only ${count} images`);
    const start = 16 + index * imageBytes;
    return {
      name: `fashion_mnist_test_${index}`,
      height,
      width,
      channels: 1,
      pixels: Array.from(bytes.subarray(start, start + imageBytes)),
    };
  });
}

// Returns the 40x32 (height x width) RGB image with pixel (y, x) =
// ((7x + 3y) mod 256, (5y + 11) mod 256, (x * y) mod 256).
function makeColourImage() {
  const height = 40;
  const width = 32;
  const pixels = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      pixels.push((7 * x + 3 * y) % 256, (5 * y + 11) % 256, (x * y) % 256);
    }
  }
  return { name: 'synthetic_rgb_40x32', height, width, channels: 3, pixels };
}

// Builds the [1, size, size, 3] input as nsfwjs 4.2.1's NSFWJS.infer does: cast to float,
// divide by 255, then resize bilinearly with aligned corners unless already size x size.
// Grey images get three identical channels first.
function preprocess(tf, image, size) {
  return tf.tidy(() => {
    let pixels = tf.tensor3d(image.pixels, [image.height, image.width, image.channels], 'int32');
    if (image.channels === 1) pixels = tf.tile(pixels, [1, 1, 3]);
    const normalized = tf.div(tf.cast(pixels, 'float32'), tf.scalar(255));
    let resized = normalized;
    if (image.height !== size || image.width !== size) {
      resized = tf.image.resizeBilinear(normalized, [size, size], true);
    }
    return tf.reshape(resized, [1, size, size, 3]);
  });
}

// Returns a model with two outputs: the map feeding the last AveragePooling2D layer and
// the original output. Also returns the name of the layer that produces that map.
function buildFeatureModel(tf, model, modelDir) {
  const poolingLayers = model.layers.filter((layer) => layer.getClassName() === 'AveragePooling2D');
  if (poolingLayers.length === 0) throw new Error(`${modelDir}: the model has no AveragePooling2D layer to take pooled features from`);
  const lastPooling = poolingLayers[poolingLayers.length - 1];
  const featureLayer = lastPooling.inboundNodes[0].inboundLayers[0];
  const featureModel = tf.model({ inputs: model.inputs, outputs: [lastPooling.input, model.outputs[0]] });
  return { featureModel, featureLayerName: featureLayer.name };
}

function parseArguments(argv) {
  let parsed;
  try {
    parsed = util.parseArgs({ args: argv, options: { size: { type: 'string' } }, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (parsed.positionals.length !== 3) {
    throw new UsageError('expected a model directory, a Fashion-MNIST image file and an output file');
  }
  const size = parsed.values.size === undefined ? null : Number(parsed.values.size);
  if (size !== null && !(Number.isInteger(size) && size > 0)) {
    throw new UsageError(`invalid --size ${parsed.values.size}: expected a positive integer`);
  }
  const [modelDir, fashionMnistFile, output] = parsed.positionals;
  return { modelDir, fashionMnistFile, output, size };
}

async function main(argv) {
  const options = parseArguments(argv);
  const images = [...readFashionMnistImages(options.fashionMnistFile, FASHION_MNIST_INDICES), makeColourImage()];

  const tf = loadTensorFlow(options.modelDir);
  if (!(await tf.setBackend('cpu'))) throw new Error('failed to initialise the TensorFlow.js cpu backend');
  const { modelFile, topology, weightSpecs, weightBytes } = readModelFiles(options.modelDir);
  if (!topology.model_config) {
    throw new Error(`${modelFile}: modelTopology has no model_config, so it is a graph model rather than a Keras layers model`);
  }
  const weightData = weightBytes.buffer.slice(weightBytes.byteOffset, weightBytes.byteOffset + weightBytes.byteLength);
  const loadStart = Date.now();
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: topology, weightSpecs, weightData }));
  console.log(`loaded ${options.modelDir} in ${Date.now() - loadStart} ms`);

  const [, inputHeight, inputWidth] = model.inputs[0].shape;
  if (inputHeight !== inputWidth) throw new Error(`${options.modelDir}: model input ${inputHeight}x${inputWidth} is not square`);
  const size = options.size === null ? inputHeight : options.size;
  if (size !== inputHeight) throw new Error(`--size ${size} does not match the model input size ${inputHeight}`);

  const { featureModel, featureLayerName } = buildFeatureModel(tf, model, options.modelDir);
  const cases = [];
  for (const image of images) {
    const start = Date.now();
    const input = preprocess(tf, image, size);
    const [featureMap, probabilities] = featureModel.predict(input);
    const pooled = tf.mean(featureMap, [1, 2]);
    const record = {
      ...image,
      probabilities: Array.from(await probabilities.data()),
      pooled: Array.from(await pooled.data()),
    };
    tf.dispose([input, featureMap, probabilities, pooled]);
    cases.push(record);
    const rounded = record.probabilities.map((p) => p.toFixed(6)).join(', ');
    console.log(`${image.name}: ${Date.now() - start} ms, probabilities [${rounded}], pooled ${record.pooled.length}-d`);
  }

  const recordedWith =
    `@tensorflow/tfjs ${tf.version.tfjs}, ${tf.getBackend()} backend (pure JavaScript). ` +
    'Preprocessing as nsfwjs 4.2.1 NSFWJS.infer: uint8 pixels (grey replicated to 3 channels) cast to float32 and ' +
    `divided by 255, then tf.image.resizeBilinear to ${size}x${size} with alignCorners=true. ` +
    `pooled = mean over height and width of the output of layer '${featureLayerName}'.`;
  const header = { model: describeSource(options.modelDir), recordedWith };
  // One case per line keeps the file readable without listing every number on its own line.
  const json = JSON.stringify(header, null, 2).replace(/\n}$/, ',\n  "cases": [\n') +
    cases.map((record) => `    ${JSON.stringify(record)}`).join(',\n') + '\n  ]\n}\n';
  writeFileAtomic(options.output, [Buffer.from(json, 'utf8')]);
  console.log(`wrote ${options.output}: ${cases.length} cases, pooled features of '${featureLayerName}'`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`record_tfjs_reference: ${err.message}`);
  if (err instanceof UsageError) {
    console.error(USAGE);
    process.exit(2);
  }
  process.exit(1);
});
