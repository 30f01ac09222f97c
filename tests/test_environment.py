"""Every record says the environment that computed it (``environment``: torch and its build, BLAS, SIMD level, NumPy,
Python, CPU, GPU), ``show`` says it in one line, and records written before it still read and show."""

from __future__ import annotations

import json
import platform

import numpy as np
import pytest
import torch
from conftest import trial_records
from rich.console import Console

from harness.core.records import (
    ENVIRONMENT_KEYS,
    cpu_model,
    cudnn_text,
    environment_differences,
    environment_summary,
    json_safe,
    read_record,
    run_environment,
    show_record,
    torch_libraries,
    write_record,
)

TEXT = ("python", "os", "cpu", "cpu_capability", "torch", "torch_commit", "numpy")
CUDA_BUILD = """PyTorch built with:
  - GCC 13.3
  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64 architecture applications
  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71049cd69a3df32adcccb623b12cd7baa22)
  - OpenMP 201511 (a.k.a. OpenMP 4.5)
  - LAPACK is enabled (usually provided by MKL)
  - CPU capability usage: AVX512
  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CUDA_VERSION=13.0, CUDNN_VERSION=9.24.0, LAPACK_INFO=mkl, \n"""
CPU_BUILD = """PyTorch built with:
  - GCC 11.2
  - oneDNN v3.7.1 (Git Hash 8d263e693366ef8db40acc569cc7d8edf644556d)
  - OpenMP 201511 (a.k.a. OpenMP 4.5)
  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release, LAPACK_INFO=open, USE_CUDA=0, \n"""
ENV = {"python": "3.11.7", "os": "Linux-6.1-x86_64-with-glibc2.36", "cpu": "AMD EPYC 7B13", "cpu_count": 2,
       "cpu_capability": "AVX2", "torch": "2.14.1+cu130", "torch_commit": "5c48869", "cuda": "13.0", "cudnn": 92400,
       "blas": "mkl", "lapack": "mkl", "mkl": "Intel(R) oneAPI Math Kernel Library Version 2024.2",
       "onednn": "Intel(R) MKL-DNN v3.12.0", "openmp": "OpenMP 201511", "numpy": "2.4.6",
       "numpy_blas": "scipy-openblas 0.3.31", "torchvision": "0.29.1", "gpu": None, "gpu_capability": None,
       "cuda_driver": None}


def test_run_environment_says_this_process_s_builds_with_typed_values():
    env = run_environment(torch.device("cpu"))
    assert tuple(env) == ENVIRONMENT_KEYS
    assert all(isinstance(env[key], str) and env[key] for key in TEXT)
    assert isinstance(env["cpu_count"], int) and env["cpu_count"] >= 1
    assert (env["python"], env["torch"], env["numpy"]) == (platform.python_version(), torch.__version__, np.__version__)
    assert env["cuda"] == torch.version.cuda and env["torch_commit"] == torch.version.git_version
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cudnn"] is None or isinstance(env["cudnn"], int)
    assert all(env[key] is None or isinstance(env[key], str) for key in ENVIRONMENT_KEYS if key not in
               ("cpu_count", "cudnn"))
    assert (env["gpu"], env["gpu_capability"], env["cuda_driver"]) == (None, None, None)  # the trial ran on the CPU
    assert json.loads(json.dumps(json_safe(env), allow_nan=False)) == env  # a record holds it as it is
    assert {k: v for k, v in env.items() if k in ("blas", "lapack", "mkl", "onednn", "openmp")} == \
        torch_libraries(torch.__config__.show())


def test_torch_libraries_of_a_cuda_and_of_a_cpu_only_build():
    assert torch_libraries(CUDA_BUILD) == {
        "blas": "mkl", "lapack": "mkl",
        "mkl": "Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64 "
               "architecture applications",
        "onednn": "Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71049cd69a3df32adcccb623b12cd7baa22)",
        "openmp": "OpenMP 201511 (a.k.a. OpenMP 4.5)"}
    assert torch_libraries(CPU_BUILD) == {
        "blas": "open", "lapack": "open", "mkl": None,
        "onednn": "oneDNN v3.7.1 (Git Hash 8d263e693366ef8db40acc569cc7d8edf644556d)",
        "openmp": "OpenMP 201511 (a.k.a. OpenMP 4.5)"}
    assert torch_libraries("") == dict.fromkeys(("blas", "lapack", "mkl", "onednn", "openmp"))


def test_cpu_model_reads_the_first_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n"
                    "processor\t: 1\nmodel name\t: something else\n")
    assert cpu_model(str(info)) == "AMD EPYC 7B13"
    info.write_text("processor\t: 0\nmodel name\t:   \n")  # an empty name, as in some virtual machines
    assert cpu_model(str(info)) == (platform.processor() or platform.machine() or "unknown")
    assert cpu_model(str(tmp_path / "none")) == (platform.processor() or platform.machine() or "unknown")


@pytest.mark.parametrize("version, text", [(92400, "9.24.0"), (90100, "9.1.0"), (8907, "8.9.7"), (8600, "8.6.0"),
                                           (None, "None"), ("x", "x")])
def test_cudnn_text(version, text):
    assert cudnn_text(version) == text


def test_environment_summary():
    assert environment_summary(ENV) == ("torch 2.14.1+cu130 (CUDA 13.0, cuDNN 9.24.0) · BLAS mkl · AVX2 · "
                                        "numpy 2.4.6 · Python 3.11.7 · CPU AMD EPYC 7B13")
    gpu = {**ENV, "gpu": "NVIDIA H100 80GB HBM3", "gpu_capability": "9.0", "cuda_driver": "13.0"}
    assert environment_summary(gpu).endswith(" · CPU AMD EPYC 7B13 · GPU NVIDIA H100 80GB HBM3")
    cpu_only = {**ENV, "torch": "2.14.1+cpu", "cuda": None, "cudnn": None, "blas": "open"}
    assert environment_summary(cpu_only).startswith("torch 2.14.1+cpu (CPU-only build) · BLAS open · AVX2")
    assert environment_summary({"numpy": "2.4.6"}) == "numpy 2.4.6"
    assert environment_summary({}) == ""


def test_environment_differences_in_the_environment_s_order():
    after = {**ENV, "torch": "2.15.0+cu132", "cpu": "Intel(R) Xeon(R) Platinum 8480+", "extra": 1}
    del after["numpy_blas"]
    assert environment_differences(ENV, after) == [
        ("cpu", "AMD EPYC 7B13", "Intel(R) Xeon(R) Platinum 8480+"), ("torch", "2.14.1+cu130", "2.15.0+cu132"),
        ("numpy_blas", "scipy-openblas 0.3.31", None), ("extra", None, 1)]
    assert environment_differences(ENV, dict(ENV)) == []
    assert environment_differences(None, {"torch": "2.14.1"}) == [("torch", None, "2.14.1")]


def _record(**extra) -> dict:
    return {"method": "darts", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": 0,
            "config_hash": "abc123", "device": "cpu (1 threads)", "test_acc": 91.5, **extra}


def _shown(record: dict) -> str:
    console = Console(record=True, width=200)
    show_record(record, console)
    return console.export_text()


def test_a_record_shows_its_environment_in_one_line(tmp_path):
    write_record(tmp_path / "r.json", _record(environment=ENV))
    record = read_record(tmp_path / "r.json")
    assert record["environment"] == ENV
    lines = _shown(record).splitlines()
    assert lines[2] == f"environment: {environment_summary(ENV)}"  # after the identity and the run's facts
    assert lines[1].startswith("config_hash: abc123  device: cpu (1 threads)")


def test_a_record_without_an_environment_reads_and_shows_as_before(tmp_path, capsys):
    write_record(tmp_path / "old.json", _record())
    record = read_record(tmp_path / "old.json")
    assert "environment" not in record and capsys.readouterr().err == ""
    assert "environment" not in _shown(record)
    write_record(tmp_path / "odd.json", _record(environment="torch 2.14"))  # not an object: left out, one warning
    record = read_record(tmp_path / "odd.json")
    assert "environment" not in record
    warning = capsys.readouterr().err.strip()
    assert warning == f"warning: record {tmp_path / 'odd.json'}: left out environment (not an object)"


@pytest.mark.slow  # a whole trial (random on nb201 at smoke: about 3 s)
def test_a_trial_records_the_environment_it_ran_in(tmp_path):
    record, = trial_records("random", "nb201", tmp_path, "env")
    assert record["environment"] == json_safe(run_environment(torch.device("cpu")))
