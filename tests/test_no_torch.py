"""The static path (load, check, summary) never imports torch."""
import subprocess
import sys

from conftest import ROOT, SPECS

PROBE = """
import sys, specc
from specc.cli import main
from specc.tools.summary import summary_table, summary_json
for path in sys.argv[1:]:
    net = specc.load(path)
    summary_table(net, 8); summary_json(net, 8)
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy'))
print(heavy)
"""


def test_loading_every_spec_imports_no_torch():
    specs = [str(p) for p in sorted(SPECS.glob("*.cnn")) + sorted(SPECS.glob("torchvision/*.cnn"))]
    out = subprocess.run([sys.executable, "-c", PROBE, *specs], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_check_command_imports_no_torch():
    code = ("import sys, runpy; sys.argv=['specc','check',*sys.argv[1:]]\n"
            "try:\n runpy.run_module('specc', run_name='__main__')\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "print([m for m in sys.modules if m.startswith('torch')])")
    out = subprocess.run([sys.executable, "-c", code, str(SPECS / "alexnet.cnn")], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_check_prints_torchvision_documented_counts_without_torch():
    """`specc check specs/torchvision/*.cnn`: torchvision's documented parameter counts, torch never imported."""
    from test_torchvision import expected_params
    from torchvision_counts import DOCUMENTED
    code = ("import sys, runpy; sys.argv=['specc','check',*sys.argv[1:]]\n"
            "try:\n runpy.run_module('specc', run_name='__main__')\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "print([m for m in sys.modules if m.startswith('torch')])")
    files = sorted(str(p.relative_to(ROOT)) for p in SPECS.glob("torchvision/*.cnn"))
    out = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    *lines, modules = out.stdout.strip().splitlines()
    assert modules == "[]"
    printed = {line.split(":")[0].split("/")[-1][:-4]: line.split("  ")[2] for line in lines}
    assert printed == {name: f"{expected_params(name):,} params" for name in DOCUMENTED}
