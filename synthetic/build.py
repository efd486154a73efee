"""``generate``: simulate the population chunk by chunk and write every partner's extracts plus the truth."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from synthetic.activity import simulate
from synthetic.config import SynthConfig
from synthetic.identity import noise_strings, rate, recorded_identity, records_of, split_records
from synthetic.ids import IdSpace
from synthetic.layouts import (
    LAYOUT,
    LAYOUTS,
    PARTNERS,
    PERSON_EXTRACT,
    Formatter,
    encounters_frame,
    enrollments_frame,
    incidents_frame,
    person_frame,
    services_frame,
    suspensions_frame,
    visits_frame,
)
from synthetic.population import Population, make_population
from synthetic.sinks import SortedCsvSink, TruthSink, atomic_write_text
from synthetic.world import RACE_LABELS, World, build_world, to_date

Progress = Callable[[int, str], object]

#: id spaces: name -> (size, lowest id)
ID_SPACES = {
    "county_client": (10 ** 8, 0), "county_service": (10 ** 9, 0), "police_person": (10 ** 9, 0),
    "student": (9 * 10 ** 6, 10 ** 6), "suspension": (9 * 10 ** 7, 10 ** 7),
    "hospital_a_patient": (9 * 10 ** 9, 10 ** 9), "hospital_a_encounter": (9 * 10 ** 11, 10 ** 11),
    "hospital_b_patient": (9 * 10 ** 7, 10 ** 7), "hospital_b_encounter": (9 * 10 ** 8, 10 ** 8),
    "ssn": (898 * 99 * 9999, 0),
}
PATIENT_SPACE = {"hospital_a": "hospital_a_patient", "hospital_b": "hospital_b_patient"}
PERSON_SPACE = {"county": "county_client", "police": "police_person", "schools": "student", **PATIENT_SPACE}
INCIDENT_BLOCK = 10 ** 7 * 4  # sort key per incident year: (number * 4 + position in incident)


class _Run:
    def __init__(self, cfg: SynthConfig, home: Path, scratch: Path) -> None:
        self.cfg = cfg
        self.world: World = build_world(cfg)
        self.fmt = Formatter(self.world)
        self.spaces = {k: IdSpace(k, size, cfg.seed, lo) for k, (size, lo) in ID_SPACES.items()}
        self.incident_spaces: dict[int, IdSpace] = {}
        self.first_year = int(to_date(self.world.start).year)
        self.last_year = int(to_date(self.world.end).year)
        buckets = max(1, min(32, -(-cfg.persons // 50_000)))
        ranges = {
            ("county", "clients"): (0, 10 ** 8), ("county", "services"): (0, 10 ** 9),
            ("police", "persons"): (0, 10 ** 9),
            ("police", "incident_persons"): ((self.first_year - 2000) * INCIDENT_BLOCK,
                                             (self.last_year - 1999) * INCIDENT_BLOCK),
            ("schools", "students"): (10 ** 6, 10 ** 7), ("schools", "enrollments"): (10 ** 8, 10 ** 9),
            ("schools", "suspensions"): (10 ** 14, 10 ** 15),
            ("hospital_a", "patients"): (10 ** 9, 10 ** 10), ("hospital_a", "encounters"): (10 ** 11, 10 ** 12),
            ("hospital_b", "patients"): (10 ** 7, 10 ** 8), ("hospital_b", "visits"): (10 ** 8, 10 ** 9),
        }
        self.home = home
        self.population: list[pd.DataFrame] = []  # residents by tract, sex, age and race (public estimates)
        self.address_points: list[pd.DataFrame] = []  # every address lived at, with its tract (public address list)
        self.sinks: dict[tuple[str, str, int], SortedCsvSink] = {}
        for lay in LAYOUTS:
            lo, hi = ranges[(lay.partner, lay.extract)]
            for k, period in enumerate(cfg.periods):
                path = home / "partners" / lay.partner / period / lay.file
                self.sinks[(lay.partner, lay.extract, k)] = SortedCsvSink(
                    path, lay.columns, lay.sep, scratch, lo, hi, buckets, tag=f"{lay.partner}-{lay.extract}-{k}")
        self.truth = TruthSink(home / "truth" / "truth.parquet")

    # ----------------------------------------------------------------------------------------------- helpers
    def _emit(self, partner: str, extract: str, period: np.ndarray, keys: np.ndarray, frame: pd.DataFrame) -> None:
        for k in range(len(self.cfg.periods)):
            m = period == k
            if m.any():
                self.sinks[(partner, extract, k)].add(keys[m], frame[m])

    def _persons(self, rng, pop: Population, partner: str, person: np.ndarray, slot: np.ndarray,
                 date: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write the person records of events (person, slot, date); return (record id per event, event period)."""
        rec = records_of(person, slot, date, self.world)
        rp, rs = rec["person"].to_numpy(), rec["slot"].to_numpy()
        rid = self.spaces[PERSON_SPACE[partner]].take(len(rec))
        ident = recorded_identity(rng, self.world, pop, rp, rs, partner)
        frame = person_frame(partner, self.fmt, rng, pop, rp, ident, rid, rec["first_seen"].to_numpy())
        period = rec["period"].to_numpy()
        self._emit(partner, PERSON_EXTRACT[partner], period, rid, frame)
        self.truth.add(pd.DataFrame({
            "source": partner, "extract": PERSON_EXTRACT[partner], "record_id": frame.iloc[:, 0].to_numpy(),
            "person_id": pop.pid[rp], "period": np.array(self.cfg.periods, dtype=object)[period],
            "race_eth": np.array(RACE_LABELS, dtype=object)[pop.race[rp]],
            "sex": np.where(pop.male[rp], "M", "F").astype(object), "birth_year": pop.birth_year[rp],
            "noise": noise_strings(ident.flags)}))
        lookup = np.full(2 * pop.n, -1, dtype=np.int64)
        lookup[rp * 2 + rs] = rid
        return lookup[person * 2 + slot], self.world.period_of(date)

    def _dup_rate(self, partner: str) -> float:
        return rate(self.cfg.noise, partner, "within_source_duplicate")

    # ------------------------------------------------------------------------------------------------- chunk
    def chunk(self, index: int, start: int, n: int) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([self.cfg.seed, 1, index]))
        pop = make_population(rng, self.world, n, start, self.spaces["ssn"])
        act = simulate(rng, self.world, pop)
        self.population.append(pd.DataFrame({"tract": pop.tract, "male": pop.male, "age": pop.age, "race": pop.race})
                               .value_counts().rename("population").reset_index())
        self.address_points.append(pd.DataFrame({
            "house": np.concatenate([pop.house, pop.prev_house]), "street": np.concatenate([pop.street, pop.prev_street]),
            "tract": np.concatenate([pop.tract, pop.prev_tract])}).drop_duplicates())

        ev = act.county
        person, date = ev["person"].to_numpy(), ev["date"].to_numpy()
        slot = split_records(rng, person, date, self._dup_rate("county"))
        client, period = self._persons(rng, pop, "county", person, slot, date)
        sid = self.spaces["county_service"].take(len(ev))
        self._emit("county", "services", period, sid, services_frame(self.fmt, ev, sid, client, period))

        ev = act.police
        person, date = ev["person"].to_numpy(), ev["date"].to_numpy()
        slot = split_records(rng, person, date, self._dup_rate("police"))
        pid, period = self._persons(rng, pop, "police", person, slot, date)
        inc_u, inc_inv = np.unique(ev["inc"].to_numpy(), return_inverse=True)
        inc_date = pd.Series(date).groupby(inc_inv).first().to_numpy(dtype=np.int64)
        inc_year = inc_date.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        inc_num = np.zeros(len(inc_u), dtype=np.int64)
        for y in np.unique(inc_year):
            sp = self.incident_spaces.setdefault(int(y), IdSpace(f"incident-{int(y)}", 10 ** 7, self.cfg.seed))
            m = inc_year == y
            inc_num[m] = sp.take(int(m.sum()))
        pos = pd.Series(np.zeros(len(ev))).groupby(inc_inv).cumcount().to_numpy()
        year, num = inc_year[inc_inv], inc_num[inc_inv]
        keys = ((year - 2000) * 10 ** 7 + num) * 4 + pos
        self._emit("police", "incident_persons", period, keys, incidents_frame(self.fmt, ev, year, num, pid))

        en, su = act.enrollments, act.suspensions
        person, year = en["person"].to_numpy(), en["year"].to_numpy()
        slot = split_records(rng, person, year, self._dup_rate("schools"))
        stu, period = self._persons(rng, pop, "schools", person, slot, en["date"].to_numpy())
        keys = stu * 100 + (year - 2000)
        self._emit("schools", "enrollments", period, keys, enrollments_frame(en, stu))
        if len(su):
            slot_of = pd.Series(slot, index=pd.MultiIndex.from_arrays([person, year]))
            slot_of = slot_of[~slot_of.index.duplicated()]
            s_slot = slot_of.reindex(pd.MultiIndex.from_arrays([su["person"].to_numpy(), su["year"].to_numpy()]))
            su = su[s_slot.notna().to_numpy()].reset_index(drop=True)
            s_slot = s_slot.dropna().to_numpy().astype(np.int64)
            lookup = np.full(2 * pop.n, -1, dtype=np.int64)
            lookup[person * 2 + slot] = stu
            s_stu = lookup[su["person"].to_numpy() * 2 + s_slot]
            inc_u, inc_inv = np.unique(su["inc"].to_numpy(), return_inverse=True)
            incno = self.spaces["suspension"].take(len(inc_u))[inc_inv]
            s_period = self.world.period_of(su["date"].to_numpy())
            self._emit("schools", "suspensions", s_period, incno * 10 ** 7 + s_stu,
                       suspensions_frame(self.fmt, su, incno, s_stu))

        for h in ("hospital_a", "hospital_b"):
            ev = act.hospital[h]
            person, date = ev["person"].to_numpy(), ev["date"].to_numpy()
            slot = split_records(rng, person, date, self._dup_rate(h))
            pat, period = self._persons(rng, pop, h, person, slot, date)
            eid = self.spaces[f"{h}_encounter"].take(len(ev))
            frame = (encounters_frame(self.fmt, rng, ev, eid, pat) if h == "hospital_a"
                     else visits_frame(self.fmt, rng, ev, eid, pat))
            self._emit(h, LAYOUT[(h, "encounters" if h == "hospital_a" else "visits")].extract, period, eid, frame)

    def finish(self) -> dict:
        records: dict = {p: {} for p in PARTNERS}
        for (partner, extract, k), sink in self.sinks.items():
            records[partner].setdefault(extract, {})[self.cfg.periods[k]] = sink.finish()
        truth_rows = self.truth.finish()
        self._write_effects()
        self._write_population_estimates()
        self._write_address_points()
        person_records = sum(sum(records[p][PERSON_EXTRACT[p]].values()) for p in PARTNERS)
        return {"persons": self.cfg.persons, "seed": self.cfg.seed, "periods": list(self.cfg.periods),
                "person_records": person_records, "records_per_person": round(person_records / self.cfg.persons, 3),
                "truth_rows": truth_rows, "records": records}


    def _write_address_points(self) -> None:
        """``partners/<hospital>/reference/address_points.csv``: every address point of the synthetic county (house
        number and street, ZIP, census tract), as the county's published master address list would give each
        hospital, whose kit looks the patient's address up in it and sends only the tract
        (``partner_kit.geocode``). Generic street names recur across tracts, so some points are ambiguous there
        and in the file, as in a real county."""
        pts = pd.concat(self.address_points, ignore_index=True).drop_duplicates()
        pts = pts[pts["street"].astype(str) != ""]
        frame = pd.DataFrame({
            "address": pts["house"].astype(str).to_numpy(dtype=object) + " " + pts["street"].to_numpy(dtype=object),
            "zip": self.world.ref.zip[pts["tract"].to_numpy()].astype(str),
            "tract": self.world.ref.tract[pts["tract"].to_numpy()].astype(str)}).sort_values(["zip", "address", "tract"])
        text = frame.to_csv(index=False)
        for partner in PATIENT_SPACE:
            path = self.home / "partners" / partner / "reference" / "address_points.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, [text])

    def _write_effects(self) -> None:
        """``truth/program_effects.json``: the programs' true effects, beside ``truth.parquet``. Only the scoring of
        evaluations (tests, bench) reads it; the evaluation itself never does."""
        import json

        fx = self.cfg.effects
        body = {"seed": self.cfg.seed, "persons": self.cfg.persons, **fx.as_dict(),
                "true_effects": {
                    "ATV": {"measure": "rate ratio of violent police contacts (victim, suspect, arrestee) in the "
                                       f"{fx.atv_window_days} days after enrollment", "value": 1 - fx.atv_violence},
                    "HVIP": {"measure": "hazard ratio of violent re-injury (assault-injury visit) after enrollment",
                             "value": 1 - fx.hvip_reinjury},
                    "area": {"measure": f"rate ratio of violent incidents in {fx.area} from {fx.area_start}",
                             "value": 1 - fx.area_violence}}}
        atomic_write_text(self.home / "truth" / "program_effects.json", [json.dumps(body, indent=1) + "\n"])

    def _write_population_estimates(self) -> None:
        """``reference/population_estimates.csv``: residents by census tract, sex, single year of age and race/
        ethnicity at the end of the last period. It stands in for the Census Bureau's population estimates, the
        denominators of the published rates; a collaborative replaces it with the real file of the same shape."""
        est = (pd.concat(self.population, ignore_index=True).groupby(["tract", "male", "age", "race"], as_index=False)
               ["population"].sum().sort_values(["tract", "male", "age", "race"]))
        frame = pd.DataFrame({
            "tract": self.world.ref.tract[est["tract"].to_numpy()].astype(str),
            "sex": np.where(est["male"].to_numpy(), "Male", "Female"),
            "age": est["age"].to_numpy(),
            "race_ethnicity": np.array(RACE_LABELS, dtype=object)[est["race"].to_numpy()],
            "population": est["population"].to_numpy()})
        path = self.home / "reference" / "population_estimates.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, [frame.to_csv(index=False)])


def generate(config: SynthConfig, home: Path, progress: Progress | None = None) -> dict:
    """Simulate ``config.persons`` persons; write ``home/partners/<partner>/<period>/<extract>.csv`` in each
    partner's native layout and ``home/truth/truth.parquet``. Returns counts only (no identifiers).

    Same configuration, same bytes. Every file is written atomically; files of earlier runs under other paths are
    left alone.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".synth-scratch-", dir=home))
    run = None
    try:
        run = _Run(config, home, scratch)
        for index, start in enumerate(range(0, config.persons, config.chunk_size)):
            n = min(config.chunk_size, config.persons - start)
            run.chunk(index, start, n)
            if progress is not None:
                progress(n, "simulating persons")
        if progress is not None:
            progress(0, "writing files")
        summary = run.finish()
    except BaseException:
        if run is not None:
            run.truth.abort()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return summary
