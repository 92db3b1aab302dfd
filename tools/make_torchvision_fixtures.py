#!/usr/bin/python3
"""Writes PyTorch files that the C++ backbone tests read.

Run it with Debian's Python, which has python3-torch and python3-torchvision
(1.13 / 0.14):

    /usr/bin/python3 tools/make_torchvision_fixtures.py fixtures data/fixtures
    /usr/bin/python3 tools/make_torchvision_fixtures.py testdata backbones/testdata

"fixtures" (run by setup.sh, git-ignored, about 450 MB) writes:
  <arch>.pth              torch.save(model.state_dict()) of a randomly
                          initialised torchvision model, an OrderedDict as in
                          torchvision's downloads, for resnet18, resnet50 and
                          wide_resnet50_2. BatchNorm statistics and affine
                          parameters are randomised too, so that loading them
                          matters.
  <arch>_outputs.pth      a plain dict: the eval-mode outputs of every tap on
                          a fixed input ("input", "stem", "layer1".."layer4",
                          "pooled", "logits").
  resnet18_scripted.pt    torch.jit.script of the resnet18 above.
  preprocessing.pth       uint8 images and what torchvision's tensor
                          transforms (Resize 256 with antialiasing,
                          CenterCrop 224, Normalize) make of them, plus
                          resnet18's pooled feature of the first case.
  state_dict_keys.txt     "arch name d0,d1,..." for every parameter and buffer
                          of the seven ResNet variants.

"testdata" writes the small files committed under backbones/testdata/: state
dicts of hand-checkable tensors in the layouts a loader meets (OrderedDict,
plain dict, {"state_dict": ...} and {"model": ...} wrappers, names saved from
nn.DataParallel, the legacy non-zip format, a pickled nn.Module) and a small TorchScript module with its
outputs.
"""

import argparse
import collections
import linecache
import os
import sys

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms.functional as TF

SEED = 20210602
ALL_ARCHS = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "wide_resnet50_2", "wide_resnet101_2",
]
# Architectures whose checkpoints and outputs are written, with the side of
# the square test input: small enough to keep the files and tests quick.
CHECKPOINT_ARCHS = {"resnet18": 224, "resnet50": 96, "wide_resnet50_2": 64}
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def make_model(arch):
    torch.manual_seed(SEED)
    model = getattr(torchvision.models, arch)(weights=None)
    generator = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                module.num_batches_tracked.fill_(
                    int(torch.randint(1, 1000, (1,), generator=generator)))
    return model.eval()


def tap_outputs(model, x):
    """Runs torchvision's ResNet step by step and returns every tap."""
    outputs = {"input": x}
    with torch.no_grad():
        y = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        outputs["stem"] = y
        for name in ["layer1", "layer2", "layer3", "layer4"]:
            y = getattr(model, name)(y)
            outputs[name] = y
        outputs["pooled"] = torch.flatten(model.avgpool(y), 1)
        outputs["logits"] = model(x)
    assert torch.allclose(outputs["logits"], model.fc(outputs["pooled"]), rtol=1e-5, atol=1e-5)
    return {name: tensor.contiguous() for name, tensor in outputs.items()}


def preprocess(images, resize=256, crop=224):
    """torchvision's tensor transforms on uint8 [N, H, W, C] images."""
    x = images.permute(0, 3, 1, 2).float() / 255
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if resize:
        x = TF.resize(x, [resize], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    if crop:
        x = TF.center_crop(x, [crop])
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def write_fixtures(directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "state_dict_keys.txt"), "w") as keys:
        for arch in ALL_ARCHS:
            torch.manual_seed(SEED)
            state = getattr(torchvision.models, arch)(weights=None).state_dict()
            for name, tensor in state.items():
                shape = ",".join(str(d) for d in tensor.shape)
                keys.write(f"{arch} {name} {shape}\n")
            print(f"recorded {len(state)} state dict entries of {arch}", file=sys.stderr)

    torch.set_num_threads(2)
    resnet18 = None
    for arch, size in CHECKPOINT_ARCHS.items():
        model = make_model(arch)
        torch.save(model.state_dict(), os.path.join(directory, f"{arch}.pth"))
        generator = torch.Generator().manual_seed(SEED + 2)
        x = torch.randn(2, 3, size, size, generator=generator)
        torch.save(tap_outputs(model, x), os.path.join(directory, f"{arch}_outputs.pth"))
        print(f"wrote {arch}.pth and {arch}_outputs.pth", file=sys.stderr)
        if arch == "resnet18":
            resnet18 = model
            torch.jit.script(model).save(os.path.join(directory, "resnet18_scripted.pt"))

    generator = torch.Generator().manual_seed(SEED + 3)

    def random_images(*shape):
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)

    cases = {
        # Fashion-MNIST-like grey images: upscaled, then cropped.
        "grey": (random_images(2, 28, 28, 1), 256, 224),
        # A portrait colour image: downscaled with antialiasing, a crop
        # offset that rounds half to even ((384 - 224) / 2 = 80 exactly,
        # (256 - 224) / 2 = 16).
        "portrait": (random_images(1, 300, 200, 3), 256, 224),
        # A landscape image whose long side scales to a fraction:
        # 256 * 333 / 250 = 340.99 -> 340, crop offset (340 - 224) / 2 = 58.
        "landscape": (random_images(1, 250, 333, 3), 256, 224),
        # No resize and a crop larger than the image: zero padding, as
        # torchvision's center_crop pads.
        "padded": (random_images(1, 21, 30, 3), 0, 24),
    }
    record = {}
    for name, (images, resize, crop) in cases.items():
        record[f"{name}/images"] = images
        record[f"{name}/resize"] = torch.tensor(resize)
        record[f"{name}/crop"] = torch.tensor(crop)
        record[f"{name}/expected"] = preprocess(images, resize, crop).contiguous()
    with torch.no_grad():
        record["grey/resnet18_pooled"] = tap_outputs(resnet18, record["grey/expected"])["pooled"]
    torch.save(record, os.path.join(directory, "preprocessing.pth"))
    print("wrote preprocessing.pth and resnet18_scripted.pt", file=sys.stderr)


# The small TorchScript test network. TorchScript stores the source file
# name of every scripted class in the saved module, so the classes are
# compiled under the neutral name "tiny_net.py" rather than this file's path.
TINY_NET_SOURCE = '''
import torch
import torch.nn as nn


class TinyBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        # In place on purpose: a tap on "bn" must keep the value before it.
        y = self.bn(self.conv(x))
        y += x
        return torch.relu_(y)


class TinyNet(nn.Module):
    """Nested submodules, a submodule called twice and one called inside a
    branch, for the TorchScript tap tests."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.body = TinyBlock(4)
        self.shared = nn.Conv2d(4, 4, 1)
        self.gate = nn.Identity()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.body(self.stem(x))
        x = self.shared(self.shared(x))
        if x.shape[0] > 1000:
            x = self.gate(x)
        return self.head(x.mean((2, 3)))

    @torch.jit.export
    def embed(self, x):
        return self.body(self.stem(x)).mean((2, 3))
'''


def make_tiny_net():
    filename = "tiny_net.py"
    # inspect, which TorchScript uses to read the source, finds it here.
    linecache.cache[filename] = (len(TINY_NET_SOURCE), None,
                                 TINY_NET_SOURCE.splitlines(True), filename)
    namespace = {"__name__": "tiny_net"}
    exec(compile(TINY_NET_SOURCE, filename, "exec"), namespace)
    return namespace["TinyNet"]()


def write_testdata(directory):
    os.makedirs(directory, exist_ok=True)

    def save(obj, name, **kwargs):
        torch.save(obj, os.path.join(directory, name), **kwargs)

    # Values a test can state by hand: 0..23 and views that share its storage.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = collections.OrderedDict()
    tensors["weight"] = base
    tensors["row"] = base[2]
    tensors["column"] = base[:, 1]
    tensors["transposed"] = base.t()
    tensors["count"] = torch.tensor(7)
    tensors["half"] = torch.tensor([0.5, -2.0], dtype=torch.float16)
    tensors["double"] = torch.tensor([1.25], dtype=torch.float64)
    tensors["flags"] = torch.tensor([True, False])
    tensors["empty"] = torch.zeros(0, 3)
    tensors._metadata = collections.OrderedDict([("", {"version": 1})])
    save(tensors, "checkpoint_ordered_dict.pth")
    plain = {"a.weight": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "a.bias": torch.tensor([-1.0, 0.5])}
    save(plain, "checkpoint_plain_dict.pth")
    save({"epoch": 3, "state_dict": collections.OrderedDict(plain), "note": "x"},
         "checkpoint_state_dict_wrapper.pth")
    save({"model": plain, "optimizer": {"lr": 0.1}}, "checkpoint_model_wrapper.pth")
    save({"module." + name: tensor for name, tensor in plain.items()},
         "checkpoint_data_parallel.pth")
    save(plain, "checkpoint_legacy_format.pth", _use_new_zipfile_serialization=False)
    torch.manual_seed(SEED)
    save(nn.Linear(2, 2), "checkpoint_whole_module.pth")

    torch.manual_seed(SEED)
    net = make_tiny_net().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    scripted = torch.jit.script(net)
    scripted.save(os.path.join(directory, "tiny_scripted.pt"))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        stem = net.stem(x)
        stem_bn = net.stem[1](net.stem[0](x))
        body_bn = net.body.bn(net.body.conv(stem))
        body = net.body(stem)
        record = {
            "input": x,
            "output": net(x),
            "stem": stem,
            "stem.1": stem_bn,
            "body": body,
            "body.bn": body_bn,
            "embed": net.embed(x),
        }
    save(record, "tiny_scripted_outputs.pth")
    print(f"wrote test data into {directory}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["fixtures", "testdata"])
    parser.add_argument("directory")
    args = parser.parse_args()
    if args.kind == "fixtures":
        write_fixtures(args.directory)
    else:
        write_testdata(args.directory)


if __name__ == "__main__":
    main()
