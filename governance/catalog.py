"""The data catalogue that requests are written against, generated from the marts' own dbt documentation.

Every column of every mart (``dbt_project/models/marts/**/_*__models.yml``) is in the catalogue with the
partners its data comes from (``meta.equity.sources``: whose stewards must approve its use), whether it is
race/ethnicity (which needs community review) and whether it is a quasi-identifier (``meta.governance``:
k-anonymity applies to it in record-level releases). Columns marked ``releasable: false`` (person keys, ids
that embed them) and those the disclosure rules forbid are never in it. One source, so the catalogue cannot
drift from the marts; a test holds it to the dbt manifest too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from sqlalchemy.orm import Session

from governance.registry.models import Dataset, DatasetColumn

__all__ = ["DBT_PROJECT_DIR", "CatalogueColumn", "catalogue", "quasi_identifiers", "seed_catalogue"]

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


@dataclass(frozen=True)
class CatalogueColumn:
    dataset: str
    name: str
    description: str
    sources: tuple[str, ...]
    race_ethnicity: bool
    quasi_identifier: bool
    #: the column's equity metadata as documented (collection method, population, known biases, suppression)
    equity: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@cache
def catalogue(project_dir: Path = DBT_PROJECT_DIR) -> dict[str, dict[str, CatalogueColumn]]:
    """dataset -> column -> :class:`CatalogueColumn`, in the marts' column order."""
    import yaml

    from governance.disclosure import DisclosureRules

    rules = DisclosureRules()
    out: dict[str, dict[str, CatalogueColumn]] = {}
    for path in sorted((project_dir / "models" / "marts").rglob("_*__models.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            cols = out.setdefault(model["name"], {})
            for c in model.get("columns", []):
                meta = c.get("meta") or {}
                gov = meta.get("governance") or {}
                if gov.get("releasable") is False or rules.forbids(c["name"]):
                    continue
                cols[c["name"]] = CatalogueColumn(
                    model["name"], c["name"], " ".join(str(c.get("description", "")).split()),
                    tuple((meta.get("equity") or {}).get("sources") or ()), c["name"].startswith("race_ethnicity"),
                    bool(gov.get("quasi_identifier")),
                    {k: " ".join(str(v).split()) for k, v in (meta.get("equity") or {}).items() if k != "sources"})
    return out


def seed_catalogue(session: Session) -> int:
    """Add every catalogue dataset and column the registry does not hold yet; returns the columns added."""
    n = 0
    for ds, cols in catalogue().items():
        dataset = session.get(Dataset, ds) or Dataset(id=ds, description=f"mart {ds}")
        session.add(dataset)
        existing = {c.name for c in dataset.columns}
        for name, col in cols.items():
            if name not in existing:
                dataset.columns.append(DatasetColumn(name=name, sources=list(col.sources),
                                                     race_ethnicity=col.race_ethnicity,
                                                     quasi_identifier=col.quasi_identifier))
                n += 1
    return n


def quasi_identifiers(dataset: str) -> list[str]:
    return [c for c, col in catalogue().get(dataset, {}).items() if col.quasi_identifier]
