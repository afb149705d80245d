import subprocess
import sys

from typer.testing import CliRunner

from medimg import __version__
from medimg.cli import app

runner = CliRunner()


def test_help_lists_the_three_groups_without_importing_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from medimg.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert all(group in result.stdout for group in ('oct', 'acne', 'mandible')), result.stdout\n"
        "for group in ('oct', 'acne', 'mandible'):\n"
        "    assert CliRunner().invoke(app, [group, '--help']).exit_code == 0\n"
        "heavy = ('torch', 'scipy', 'skimage', 'bm3d', 'nibabel', 'pydicom', 'highdicom', 'PIL')\n"
        "heavy = [name for name in heavy if name in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in completed.stdout


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"medimg {__version__}"


def test_unknown_option_exits_2():
    result = runner.invoke(app, ["oct", "extract", "--no-such-option"])
    assert result.exit_code == 2
    assert result.stdout == ""


def test_python_dash_m_runs_the_same_app():
    completed = subprocess.run([sys.executable, "-m", "medimg", "--version"], capture_output=True, text=True)
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"medimg {__version__}"
