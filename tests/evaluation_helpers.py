"""A warehouse with perfect linkage, straight from the simulator, for the statistical tests of the evaluation.

The evaluation's estimates are scored against the simulator's true effects on several seeds. Building each
warehouse through the whole pipeline (kit, landing, Splink, dbt) costs about two minutes per few thousand persons
on a two-core machine, too slow for several seeds in the test run; this helper writes the two marts the
evaluation reads (``analytics.events``, ``analytics.persons``, the columns it uses, with the marts' codes) from
the simulated persons directly, keyed by the true person. The estimators are thus tested apart from linkage
error; ``tests/integration/test_evaluation.py`` runs the evaluation on a warehouse the real pipeline built.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from governance.defaults import AGE_BANDS
from synthetic.activity import ASSAULT_CATS, simulate
from synthetic.build import ID_SPACES
from synthetic.config import SynthConfig
from synthetic.ids import IdSpace
from synthetic.population import make_population
from synthetic.world import build_world

ROLE_EVENT = {"VIC": "police_contact_victim", "SUS": "police_contact_suspect", "ARR": "police_arrest"}
PROGRAM = {"ATV_ENROLL": "ATV", "HVIP_ENROLL": "HVIP"}


def _age_band(age: np.ndarray) -> np.ndarray:
    out = np.full(len(age), AGE_BANDS[-1][0], dtype=object)
    for label, upper in reversed(AGE_BANDS[:-1]):
        out[age < upper] = label
    out[age < 0] = "Unknown"
    return out


def truth_linked_warehouse(path: Path, cfg: SynthConfig) -> Path:
    """Simulate ``cfg`` (the same persons and events ``synthetic.generate`` writes) into a DuckDB file at ``path``."""
    world = build_world(cfg)
    geo = world.ref.geo
    area_of = geo["priority_area"].to_numpy(dtype=object)
    tract_of = world.ref.tract
    events, persons = [], []
    for index, start in enumerate(range(0, cfg.persons, cfg.chunk_size)):
        n = min(cfg.chunk_size, cfg.persons - start)
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1, index]))
        pop = make_population(rng, world, n, start, IdSpace("ssn", ID_SPACES["ssn"][0], cfg.seed, 0))
        act = simulate(rng, world, pop)
        key = np.array([f"pk_{p}" for p in pop.pid], dtype=object)
        birth_year = (pop.dob.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970)
        persons.append(pd.DataFrame({"person_key": key, "birth_year": birth_year,
                                     "sex": np.where(pop.male, "Male", "Female")}))
        pol = act.police
        role = pol["role"].to_numpy()
        violent = pol["violent"].to_numpy()
        tr = pol["tract"].to_numpy()
        events.append(pd.DataFrame({
            "person": pol["person"].to_numpy(), "date": pol["date"].to_numpy(), "sector": "police",
            "event_type": pd.Series(role).map(ROLE_EVENT).to_numpy(),
            "is_violent_offense_victim": violent & (role == "VIC"),
            "is_violent_offense_suspect": violent & (role != "VIC"), "is_assault_injury": False,
            "is_program_enrollment": False, "program": None, "census_tract": tract_of[tr],
            "priority_area": area_of[tr], "geography_basis": "incident location"}).assign(person_key=lambda f, k=key: k[f["person"].to_numpy()]))
        for h in act.hospital.values():
            events.append(pd.DataFrame({
                "person": h["person"].to_numpy(), "date": h["date"].to_numpy(), "sector": "hospital",
                "event_type": "ed_visit", "is_violent_offense_victim": False, "is_violent_offense_suspect": False,
                "is_assault_injury": np.isin(h["cat"].to_numpy(), ASSAULT_CATS), "is_program_enrollment": False,
                "program": None, "census_tract": None, "priority_area": None,
                "geography_basis": "residence ZIP (patient record)"}).assign(person_key=lambda f, k=key: k[f["person"].to_numpy()]))
        cty = act.county[act.county["code"].isin(list(PROGRAM))]
        home = pop.tract[cty["person"].to_numpy()]
        events.append(pd.DataFrame({
            "person": cty["person"].to_numpy(), "date": cty["date"].to_numpy(), "sector": "county_services",
            "event_type": "program_enrollment", "is_violent_offense_victim": False,
            "is_violent_offense_suspect": False, "is_assault_injury": False, "is_program_enrollment": True,
            "program": cty["code"].map(PROGRAM).to_numpy(), "census_tract": tract_of[home],
            "priority_area": area_of[home], "geography_basis": "residence (client record)"}).assign(person_key=lambda f, k=key: k[f["person"].to_numpy()]))
    ev = pd.concat(events, ignore_index=True)
    ev["event_date"] = ev["date"].astype("datetime64[D]")
    by = pd.concat(persons, ignore_index=True).set_index("person_key")["birth_year"]
    ev["age_at_event"] = ev["event_date"].dt.year.to_numpy() - by.reindex(ev["person_key"]).to_numpy()
    ev["age_band_at_event"] = _age_band(ev["age_at_event"].to_numpy())
    ev["priority_area"] = ev["priority_area"].replace("", None)
    ev["is_priority_area"] = np.where(ev["census_tract"].isna(), None, ev["priority_area"].notna())
    ev = ev.drop(columns=["person", "date"])
    ps = pd.concat(persons, ignore_index=True)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists analytics")
        con.register("ev", ev)
        con.register("ps", ps)
        con.execute("create or replace table analytics.events as select person_key, cast(event_date as date) "
                    "event_date, sector, event_type, is_violent_offense_victim, is_violent_offense_suspect, "
                    "is_assault_injury, is_program_enrollment, program, census_tract, priority_area, "
                    "cast(is_priority_area as boolean) is_priority_area, geography_basis, "
                    "cast(age_at_event as integer) age_at_event, age_band_at_event from ev")
        con.execute("create or replace table analytics.persons as select * from ps")
    return path
