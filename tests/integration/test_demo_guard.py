"""The demo is not a deployment (issue 10.9): `flask demo` refuses a database with users, and
run.sh says it is a demo."""
from pathlib import Path

from crm import users
from crm.demo import DEMO_PASSWORD
from models import Lead, db

RUN_SH = Path(__file__).resolve().parents[2] / "scripts" / "run.sh"


def test_demo_refuses_a_database_that_already_has_users(app, make_user):
    make_user("owner@company.example", admin=True)
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code != 0 and "already has users" in result.output
    assert DEMO_PASSWORD not in result.output  # no published password offered for a real database
    assert [u.email for u in users.all_users()] == ["owner@company.example"]
    assert db.session.scalar(db.select(db.func.count()).select_from(Lead)) == 0


def test_run_sh_says_it_is_a_demo_and_not_a_deployment():
    script = RUN_SH.read_text()
    banner = "\n".join(line for line in script.splitlines() if line.lstrip().startswith(("printf", "echo")))
    assert "DEMO" in banner and "not for production" in banner.lower()
