"""The same host job done by Ansible's `community.vmware.vmware_host_passthrough`, as a user
would write it: one task looping over the hosts, run by `ansible-playbook` against the simulator.

Ansible lives in its own venv under the sandbox cache (pinned in ansible-requirements.txt), so
it never touches the operator's locked environment."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from bench import stage
from dpio_sandbox.paths import cache_root
from dpio_sandbox.vcsim import Simulator

REQUIREMENTS = Path(__file__).with_name("ansible-requirements.txt")


def venv() -> Path:
    """The bench venv with the pinned Ansible, created or updated when the pins change."""
    root = cache_root() / "bench-venv"
    marker = root / ".requirements.sha256"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text() == want:
        return root
    print(f"   installing Ansible into {root} (pinned in {REQUIREMENTS.name})", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    subprocess.run(
        [
            str(root / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
    )
    marker.write_text(want)
    return root


def playbook(sim: Simulator, hosts: Sequence[str], addresses: Sequence[str]) -> str:
    """One task, looped over the hosts: what the module's documentation shows per ESXi host."""
    url = urlparse(sim.sdk_url)
    play = [
        {
            "name": "Enable DirectPath I/O on the GPU hosts",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"esxi_hosts": list(hosts)},
            "tasks": [
                {
                    "name": "Enable PCI device passthrough",
                    "community.vmware.vmware_host_passthrough": {
                        "hostname": url.hostname,
                        "port": url.port,
                        "username": sim.username,
                        "password": sim.password,
                        "validate_certs": False,
                        "esxi_hostname": "{{ item }}",
                        "devices": [{"device": a} for a in addresses],
                        "state": "present",
                    },
                    "loop": "{{ esxi_hosts }}",
                }
            ],
        }
    ]
    # JSON is YAML: ansible-playbook reads it as is.
    return json.dumps(play, indent=2)


def run(root: Path, work: Path, text: str) -> stage.PeerRun:
    work.mkdir(parents=True, exist_ok=True)
    book = work / "playbook.yml"
    book.write_text(text)
    log = work / "ansible.log"
    python = root / "bin" / "python"
    env = {
        **os.environ,
        "PATH": f"{root / 'bin'}:{os.environ.get('PATH', '')}",
        "ANSIBLE_HOME": str(work / "home"),
        "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": str(python),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)  # the operator's sandbox path is not Ansible's business
    argv = [str(root / "bin" / "ansible-playbook"), "-i", "localhost,", str(book)]
    return stage.run_peer(argv, env, work, log)
