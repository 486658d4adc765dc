from pathlib import Path

from sutra_deploy.tools.waiting import wait_until
from sutra_deploy.verify.sampler import CgroupFiles, Sampler

MI = 2**20


def cgroup_v1(root: Path, container_id: str, usage: int, inactive: int, peak: int, cpu_ns: int) -> Path:
    memory = root / "memory" / "docker" / container_id
    memory.mkdir(parents=True)
    (memory / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (memory / "memory.stat").write_text(f"cache 100\ninactive_file 1\ntotal_inactive_file {inactive}\n")
    (memory / "memory.max_usage_in_bytes").write_text(f"{peak}\n")
    cpu = root / "cpuacct" / "docker" / container_id
    cpu.mkdir(parents=True)
    (cpu / "cpuacct.usage").write_text(f"{cpu_ns}\n")
    return memory


def test_the_working_set_is_usage_minus_inactive_file_cache_on_v1(tmp_path):
    cgroup_v1(tmp_path, "abc", usage=300 * MI, inactive=100 * MI, peak=320 * MI, cpu_ns=5 * 10**9)
    files = CgroupFiles.find("abc", tmp_path)
    assert (files.working_set(), files.max_usage(), files.cpu_seconds()) == (200 * MI, 320 * MI, 5.0)


def test_v2_counters_are_read_too(tmp_path):
    unified = tmp_path / "system.slice" / "docker-def.scope"
    unified.mkdir(parents=True)
    (unified / "memory.current").write_text(f"{500 * MI}\n")
    (unified / "memory.stat").write_text(f"anon 1\ninactive_file {50 * MI}\n")
    (unified / "memory.peak").write_text(f"{700 * MI}\n")
    (unified / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 1\n")
    files = CgroupFiles.find("def", tmp_path)
    assert (files.working_set(), files.max_usage(), files.cpu_seconds()) == (450 * MI, 700 * MI, 2.5)


def test_the_sampler_keeps_the_peak_and_the_cpu_used_in_between(tmp_path):
    memory = cgroup_v1(tmp_path, "abc", usage=100 * MI, inactive=0, peak=100 * MI, cpu_ns=10**9)
    with Sampler({"sutra-api": "abc", "gone": "nothing-here"}, interval=0.01, root=tmp_path) as sampler:
        (memory / "memory.usage_in_bytes").write_text(f"{400 * MI}\n")
        wait_until(lambda: sampler.usage["sutra-api"].samples >= 3, timeout=5, interval=0.01, what="samples")
        (memory / "memory.usage_in_bytes").write_text(f"{150 * MI}\n")
        (tmp_path / "cpuacct/docker/abc/cpuacct.usage").write_text(f"{4 * 10**9}\n")
    usage = sampler.usage["sutra-api"]
    assert usage.peak_working_set == 400 * MI
    assert usage.cpu_seconds == 3.0
    assert sampler.missing == ["gone"]
