#!/usr/bin/python3
"""The Python PyTorch side of the backbone throughput comparison.

Run with Debian's Python (python3-torch 1.13, python3-torchvision 0.14):

  backbone_throughput.py prepare --images DIR --count N
      writes the first N Fashion-MNIST test images as 28x28 grey PNG files
  backbone_throughput.py checkpoint --model resnet152 --weights FILE
      saves the state_dict of a randomly initialised torchvision model
  backbone_throughput.py run --model resnet50 --weights FILE --images DIR \\
      --count 256 --batch 32 --threads 2 --workers 0
      decodes the PNG files with PIL, applies the torchvision transforms
      PANDA uses (Resize(256), CenterCrop(224), ToTensor, Normalize; for
      mobilenet_v2 Resize((224, 224)) and ToTensor, as the keras backbone
      scales), batches them with a DataLoader of --workers worker processes
      and runs the model in eval mode under torch.inference_mode(), in the
      channels-last memory format with --channels_last. One untimed warm-up
      batch comes first. Prints "RESULT key=value ...".
  backbone_throughput.py flops --model resnet50
      counts the multiply-adds of convolutions and linear layers at 224 px
      with forward hooks and prints FLOPs per image (2 per multiply-add)

The C++ side is backbone_throughput.cc; compare_throughput.sh runs both.
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

FASHION_MNIST_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def prepare(args):
    with gzip.open(FASHION_MNIST_TEST, "rb") as f:
        data = f.read()
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    os.makedirs(args.images, exist_ok=True)
    for i in range(args.count):
        Image.fromarray(images[i], mode="L").save(os.path.join(args.images, f"{i:05d}.png"))
    print(f"wrote {args.count} PNG files into {args.images}", file=sys.stderr)


def make_model(name, weights):
    model = getattr(torchvision.models, name)(weights=None)
    if weights:
        model.load_state_dict(torch.load(weights, map_location="cpu"))
    return model.eval()


def checkpoint(args):
    torch.manual_seed(0)
    torch.save(make_model(args.model, None).state_dict(), args.weights)
    print(f"wrote {args.weights}", file=sys.stderr)


class PngFolder(torch.utils.data.Dataset):
    def __init__(self, folder, count, transform):
        names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
        if len(names) < count:
            raise SystemExit(f"{folder} has {len(names)} PNG files, fewer than {count}")
        self.paths = [os.path.join(folder, n) for n in names[:count]]
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("L"))


def transform_for(model):
    if model == "mobilenet_v2":
        return T.Compose([T.Resize((224, 224)), T.Grayscale(3), T.ToTensor()])
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.Grayscale(3), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def run(args):
    torch.set_num_threads(args.threads)
    model = make_model(args.model, args.weights)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    dataset = PngFolder(args.images, args.count + args.batch, transform_for(args.model))
    warm_up = torch.utils.data.Subset(dataset, range(args.batch))
    timed = torch.utils.data.Subset(dataset, range(args.batch, args.batch + args.count))
    checksum = 0.0
    with torch.inference_mode():
        for batch in torch.utils.data.DataLoader(warm_up, batch_size=args.batch):
            model(batch.contiguous(memory_format=memory_format))
        start = time.perf_counter()
        loader = torch.utils.data.DataLoader(timed, batch_size=args.batch,
                                             num_workers=args.workers)
        for batch in loader:
            checksum += float(model(batch.contiguous(memory_format=memory_format)).sum())
        seconds = time.perf_counter() - start
    tuned = "MALLOC_MMAP_THRESHOLD_" in os.environ
    print(f"RESULT side=python model={args.model} mode=end_to_end workers={args.workers} "
          f"malloc_tuned={int(tuned)} channels_last={int(args.channels_last)} threads={args.threads} batch={args.batch} "
          f"images={args.count} seconds={seconds:.3f} images_per_s={args.count / seconds:.2f} "
          f"checksum={checksum:.6g}")


def flops(args):
    model = make_model(args.model, None)
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * output.numel() * kernel * module.in_channels // module.groups
        elif isinstance(module, torch.nn.Linear):
            total += 2 * output.numel() * module.in_features

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(count)
    with torch.inference_mode():
        model(torch.zeros(1, 3, 224, 224))
    print(f"RESULT side=python model={args.model} mode=flops flops_per_image={total}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["prepare", "checkpoint", "run", "flops"])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--weights", default="")
    parser.add_argument("--images", default="")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--channels_last", action="store_true")
    args = parser.parse_args()
    {"prepare": prepare, "checkpoint": checkpoint, "run": run, "flops": flops}[args.command](args)


if __name__ == "__main__":
    main()
