"""The partner kit runs at agencies with light dependencies only: prove it imports none of the heavy stack."""

import subprocess
import sys

HEAVY = ("dagster", "dagster_dbt", "dbt", "splink", "great_expectations", "sqlalchemy", "alembic", "duckdb")

KIT_MODULES = ["workspace", "envelope", "envelope.keys", "envelope.format", "partner_kit", "partner_kit.normalise",
               "partner_kit.encode", "partner_kit.extract", "partner_kit.profiles", "vpdc.cli"]


def test_partner_kit_imports_no_heavy_dependency():
    code = (
        "import sys\n"
        f"for m in {KIT_MODULES!r}: __import__(m)\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(','.join(heavy))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "", f"partner kit imported: {res.stdout}"


def test_partner_cli_help_runs_without_heavy_dependencies():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vpdc.cli import app\n"
        "r = CliRunner().invoke(app, ['partner', 'encode', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == ""
