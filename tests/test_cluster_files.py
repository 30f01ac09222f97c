"""The example `ray up` cluster files in cluster/ pass Ray's own configuration checks, offline.

`ray up` runs ``ray.autoscaler._private.commands._bootstrap_config``: ``prepare_config`` (merge with the
provider's defaults.yaml; for "local", build its single node type), the provider's resource autodetection
(a cloud API call on AWS), ``validate_config`` (the JSON schema ray/autoscaler/ray-schema.json plus the
head-node-type and min/max-workers rules), then the provider's ``bootstrap_config`` (cloud calls: IAM, key
pairs, subnets). Here ``prepare_config`` + ``validate_config`` run for every file, and the whole
``_bootstrap_config`` for "local", whose bootstrap contacts nothing; nothing contacts AWS or GCP.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER = Path(__file__).resolve().parent.parent / "cluster"
FILES = ["aws.yaml", "gcp.yaml", "local.yaml"]
SHARED = "/mnt/shared/results"
DATA = "/mnt/shared/data"  # the --data-dir cluster/README.md gives: one copy of each dataset for all nodes


def load(name: str) -> dict:
    with open(CLUSTER / name) as f:
        config = yaml.safe_load(f)
    assert isinstance(config, dict), name
    return config


def ray_validate(config: dict) -> dict:
    """What `ray up` checks before it contacts the provider; returns the prepared config."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def commands(config: dict) -> list[str]:
    keys = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands")
    return [cmd for key in keys for cmd in config.get(key) or []]


@pytest.mark.parametrize("name", FILES)
def test_ray_accepts_the_file(name):
    config = load(name)
    prepared = ray_validate(config)
    assert prepared["provider"]["type"] == Path(name).stem
    assert prepared["cluster_name"] == config["cluster_name"]
    assert prepared["head_node_type"] in prepared["available_node_types"]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("ray start" in cmd for cmd in prepared[key]), key
    assert any("--head" in cmd for cmd in prepared["head_start_ray_commands"])
    assert any("$RAY_HEAD_IP" in cmd for cmd in prepared["worker_start_ray_commands"])


def test_local_passes_ray_ups_whole_bootstrap():
    from ray.autoscaler._private.commands import _bootstrap_config

    resolved = _bootstrap_config(load("local.yaml"), no_config_cache=True)
    node_types = resolved["available_node_types"]
    assert list(node_types) == [resolved["head_node_type"]]
    (node_type,) = node_types.values()
    # the machines' own CPUs and GPUs count (Ray's local provider overrides no resource)
    assert node_type["resources"] == {}
    assert node_type["max_workers"] == len(resolved["provider"]["worker_ips"]) == resolved["max_workers"]


@pytest.mark.parametrize("name", FILES)
def test_every_node_installs_the_harness(name):
    prepared = ray_validate(load(name))
    for key in ("head_setup_commands", "worker_setup_commands"):  # setup_commands merged into both by Ray
        installs = [cmd for cmd in prepared[key] if re.search(r"pip install (-\S+ )*-e \.(\s|$)", cmd)]
        assert installs, f"{name}: {key} does not pip install -e . the harness"
        # installed where the project is: the folder file_mounts copies, or a git clone
        folder = installs[-1].split("cd ", 1)[1].split(" ", 1)[0] if "cd " in installs[-1] else None
        assert folder, f"{name}: the install does not cd into the project"
        cloned = any("git clone" in cmd and folder in cmd for cmd in prepared[key])
        assert folder in prepared["file_mounts"] or cloned, f"{name}: nothing puts the project in {folder}"
    mounts = prepared["file_mounts"]
    for remote, local in mounts.items():
        if remote == "~/nas-harness":
            assert (CLUSTER.parent / local / "pyproject.toml").exists(), "file_mounts must copy the repository root"


@pytest.mark.parametrize("name", FILES)
def test_the_results_folder_is_shared(name):
    config = load(name)
    cmds = commands(config)
    assert any("mount" in cmd and "/mnt/shared" in cmd for cmd in cmds), f"{name}: no shared file system mounted"
    assert any(SHARED in cmd and "test -w" in cmd for cmd in config["setup_commands"]), (
        f"{name}: setup_commands do not check that {SHARED} is writable")
    docker = config.get("docker") or {}
    if docker.get("image"):  # mounted on the host: the container must see it at the same path
        assert any("-v /mnt/shared:/mnt/shared" in opt for opt in docker.get("run_options", [])), name
    assert SHARED in (CLUSTER / "README.md").read_text()


@pytest.mark.parametrize("name", FILES)
def test_the_data_folder_is_shared_and_writable(name):
    """The container's user creates the CIFAR download's lock and temporary folder in --data-dir on every node:
    the folder must exist on the shared mount and be writable there (a root-owned mount point is not)."""
    config = load(name)
    assert any(DATA in cmd and "sudo mkdir" in cmd and ("chmod 1777" in cmd or "chown" in cmd)
               for cmd in commands(config)), f"{name}: {DATA} is not created writable"
    assert any(f"test -w {DATA}" in cmd for cmd in config["setup_commands"]), (
        f"{name}: setup_commands do not check that {DATA} is writable")
    assert f"--data-dir {DATA}" in (CLUSTER / "README.md").read_text()


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_gpu_workers_declare_their_gpus(name):
    prepared = ray_validate(load(name))
    head = prepared["head_node_type"]
    workers = {k: v for k, v in prepared["available_node_types"].items() if k != head}
    assert workers
    for node_type, spec in workers.items():
        gpus = spec["resources"].get("GPU", 0)
        assert gpus >= 1, f"{name}: {node_type} declares no GPU"
        node = spec["node_config"]
        if "InstanceType" in node:  # AWS: a GPU instance family
            assert re.match(r"(g4dn|g5|g6|g6e|p3|p4d|p4de|p5)\.", node["InstanceType"]), node_type
        else:  # GCP: accelerators attached, or an a2/a3/g2 machine type that has them built in
            accelerators = sum(a["acceleratorCount"] for a in node.get("guestAccelerators", []))
            assert accelerators == gpus or re.match(r"(a2|a3|g2)-", node["machineType"]), node_type
            assert node["scheduling"]["onHostMaintenance"] == "TERMINATE", node_type
    # at least one GPU node is up when the harness checks that a trial fits the cluster's largest node
    assert sum(spec.get("min_workers", 0) for spec in workers.values()) >= 1
    assert prepared["available_node_types"][head]["resources"].get("GPU", 0) == 0


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("mutation", ["no provider", "cluster_name a number", "max_workers a string", "unknown key",
                                      "provider without type", "setup_commands not a list"])
def test_ray_refuses_a_broken_file(name, mutation):
    config = load(name)
    if mutation == "no provider":
        del config["provider"]
    elif mutation == "cluster_name a number":
        config["cluster_name"] = 7
    elif mutation == "max_workers a string":
        config["max_workers"] = "eight"
    elif mutation == "unknown key":
        config["setup_comands"] = ["pip install -e ."]
    elif mutation == "provider without type":
        del config["provider"]["type"]
    elif mutation == "setup_commands not a list":
        config["setup_commands"] = "pip install -e ."
    with pytest.raises((jsonschema.ValidationError, KeyError, TypeError, ValueError)):
        ray_validate(config)


@pytest.mark.parametrize("name", FILES)
def test_the_schema_itself_refuses(name):
    """validate_config alone (after Ray's defaults are filled in), so the refusals above are the schema's."""
    prepared = prepare_config(load(name))
    for key, value in (("provider", None), ("max_workers", "eight"), ("setup_comands", []), ("auth", [])):
        broken = copy.deepcopy(prepared)
        if value is None:
            del broken[key]
        else:
            broken[key] = value
        with pytest.raises(jsonschema.ValidationError):
            validate_config(broken)


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_ray_refuses_broken_node_types(name):
    config = load(name)
    broken = copy.deepcopy(config)
    broken["head_node_type"] = "no-such-type"
    with pytest.raises(ValueError, match="head_node_type"):
        ray_validate(broken)
    broken = copy.deepcopy(config)
    worker = next(k for k in broken["available_node_types"] if k != broken["head_node_type"])
    del broken["available_node_types"][worker]["resources"]  # Ray cannot fill it in offline (or ever, on GCP)
    with pytest.raises(jsonschema.ValidationError, match="resources"):
        ray_validate(broken)
    broken = copy.deepcopy(config)
    broken["available_node_types"][worker]["min_workers"] = broken["max_workers"] + 1
    with pytest.raises(ValueError, match="min_workers"):
        ray_validate(broken)


def test_ray_refuses_node_types_in_the_local_file():
    import click

    config = load("local.yaml")
    config["available_node_types"] = {"gpu": {"resources": {"GPU": 1}, "node_config": {}}}
    config["head_node_type"] = "gpu"
    with pytest.raises(click.ClickException, match="available_node_types"):
        ray_validate(config)
