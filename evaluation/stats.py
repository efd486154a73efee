"""Estimators: matching, balance, difference-in-differences, event study, survival, area-level impact.

Pure functions over the frames of :mod:`evaluation.data` (pandas in, plain numbers out). Rate ratios and hazard
ratios come from statsmodels and lifelines with 95 % intervals; nothing here decides what may be published
(:mod:`evaluation.protect` does).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evaluation.designs import MATCH_ON

__all__ = ["area_did", "balance", "cem_weights", "cox_hazard_ratio", "did", "event_study", "kaplan_meier",
           "naive_pre_post"]

Z = stats.norm.ppf(0.975)


def cem_weights(df: pd.DataFrame, on: tuple[str, ...] = MATCH_ON) -> pd.DataFrame:
    """Coarsened exact matching: keep the strata (one per combination of ``on``) holding both groups; weight
    participants 1 and each comparison person (participants in stratum / comparisons in stratum) x (matched
    comparisons / matched participants), so the weighted comparison group has the participants' mix.

    Returns the frame with ``stratum``, ``matched`` and ``w`` (0 where unmatched).
    """
    out = df.copy()
    out["stratum"] = out[list(on)].astype(str).agg("|".join, axis=1)
    n = out.groupby(["stratum", "treated"]).size().unstack(fill_value=0).reindex(columns=[0, 1], fill_value=0)
    both = n[(n[0] > 0) & (n[1] > 0)]
    out["matched"] = out["stratum"].isin(both.index)
    t_total, c_total = both[1].sum(), both[0].sum()
    ratio = (both[1] / both[0]) * (c_total / t_total) if t_total else both[1] * 0.0
    out["w"] = np.where(out["treated"] == 1, 1.0, out["stratum"].map(ratio).fillna(0.0))
    out.loc[~out["matched"], "w"] = 0.0
    return out


def _smd(x_t: np.ndarray, x_c: np.ndarray, w_c: np.ndarray | None = None) -> float:
    w_c = np.ones(len(x_c)) if w_c is None else w_c
    if not len(x_t) or not w_c.sum():
        return float("nan")
    m_t, m_c = x_t.mean(), np.average(x_c, weights=w_c)
    v_t, v_c = x_t.var(), np.average((x_c - m_c) ** 2, weights=w_c)
    sd = np.sqrt((v_t + v_c) / 2)
    return float((m_t - m_c) / sd) if sd > 0 else 0.0


def balance(df: pd.DataFrame, covariates: dict[str, str]) -> list[dict[str, Any]]:
    """Standardised mean differences before matching (all eligible comparisons, unweighted) and after (matched,
    weighted), per level of each categorical covariate and per numeric one, with the counts behind each row.

    ``covariates``: column -> "categorical" or "numeric".
    """
    t = df[df["treated"] == 1]
    c = df[df["treated"] == 0]
    tm, cm = t[t["matched"]], c[c["matched"]]
    rows = []
    for col, kind in covariates.items():
        if kind == "numeric":
            rows.append({"variable": col, "level": "mean", "kind": kind,
                         "participants": float(t[col].mean()) if len(t) else float("nan"),
                         "comparison_before": float(c[col].mean()) if len(c) else float("nan"),
                         "comparison_after": float(np.average(cm[col], weights=cm["w"])) if cm["w"].sum() else float("nan"),
                         "smd_before": _smd(t[col].to_numpy(float), c[col].to_numpy(float)),
                         "smd_after": _smd(tm[col].to_numpy(float), cm[col].to_numpy(float), cm["w"].to_numpy()),
                         "n_participants": int(len(t)), "n_comparison_before": int(len(c)),
                         "n_comparison_after": int(len(cm)), "n_participants_after": int(len(tm)),
                         "variable_of": col})
            continue
        for level in sorted(df[col].astype(str).unique()):
            xt, xc = (t[col].astype(str) == level).to_numpy(float), (c[col].astype(str) == level).to_numpy(float)
            xtm, xcm = (tm[col].astype(str) == level).to_numpy(float), (cm[col].astype(str) == level).to_numpy(float)
            rows.append({"variable": col, "level": level, "kind": kind,
                         "participants": float(xt.mean()) if len(xt) else float("nan"),
                         "comparison_before": float(xc.mean()) if len(xc) else float("nan"),
                         "comparison_after": float(np.average(xcm, weights=cm["w"])) if cm["w"].sum() else float("nan"),
                         "smd_before": _smd(xt, xc), "smd_after": _smd(xtm, xcm, cm["w"].to_numpy()),
                         "n_participants": int(xt.sum()), "n_comparison_before": int(xc.sum()),
                         "n_comparison_after": int(xcm.sum()), "n_participants_after": int(xtm.sum()),
                         "variable_of": col})
    return rows


def _fit_poisson(y, X, exposure, weights, groups):
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GLM(y, X, family=sm.families.Poisson(), offset=np.log(exposure), var_weights=weights)
        return model.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(groups)[0]})


def _ratio(fit, term: str, df_t: int | None = None) -> dict[str, float]:
    b, se = float(fit.params[term]), float(fit.bse[term])
    crit = stats.t.ppf(0.975, df_t) if df_t and df_t > 0 else Z
    if not np.isfinite(se) or se <= 0:
        return {"estimate": float(np.exp(b)), "low": float("nan"), "high": float("nan"), "p_value": float("nan")}
    p = 2 * (stats.t.sf(abs(b / se), df_t) if df_t and df_t > 0 else stats.norm.sf(abs(b / se)))
    return {"estimate": float(np.exp(b)), "low": float(np.exp(b - crit * se)), "high": float(np.exp(b + crit * se)),
            "p_value": float(p), "log_estimate": b, "se": se}


def did(df: pd.DataFrame, outcome: str) -> dict[str, Any]:
    """Difference-in-differences on the rate ratio scale: Poisson regression of the pre- and post-window counts
    (exposure days as offset, matching weights) on group, window and their interaction; the interaction's
    exponent is the ratio of the participants' post/pre rate ratio to the comparison group's. 95 % interval
    from standard errors clustered by person."""
    m = df[df["matched"]]
    long = pd.concat([
        pd.DataFrame({"pid": m["person_key"], "y": m[f"{outcome}_pre"], "exp": m["pre_days"], "post": 0,
                      "treated": m["treated"], "w": m["w"]}),
        pd.DataFrame({"pid": m["person_key"], "y": m[f"{outcome}_post"], "exp": m["post_days"], "post": 1,
                      "treated": m["treated"], "w": m["w"]})], ignore_index=True)
    long = long[(long["exp"] > 0) & (long["w"] > 0)]
    X = pd.DataFrame({"const": 1.0, "treated": long["treated"], "post": long["post"],
                      "treated_post": long["treated"] * long["post"]}, index=long.index)
    fit = _fit_poisson(long["y"].to_numpy(float), X.astype(float), long["exp"].to_numpy(float),
                       long["w"].to_numpy(float), long["pid"].to_numpy())
    return _ratio(fit, "treated_post") | {"persons": int(m["person_key"].nunique())}


def naive_pre_post(df: pd.DataFrame, outcome: str) -> dict[str, Any]:
    """What a pre/post window alone gives: participants' events in the year after enrollment over the year up to
    it (the cohort mart's windows), Poisson with exposure offset, clustered by person. Biased when people
    enroll after a recent event: that event sits in the pre window."""
    t = df[df["treated"] == 1]
    long = pd.concat([
        pd.DataFrame({"pid": t["person_key"], "y": t[f"{outcome}_naive_pre"], "exp": t["naive_pre_days"], "post": 0}),
        pd.DataFrame({"pid": t["person_key"], "y": t[f"{outcome}_post"], "exp": t["post_days"], "post": 1})],
        ignore_index=True)
    long = long[long["exp"] > 0]
    X = pd.DataFrame({"const": 1.0, "post": long["post"]}, index=long.index).astype(float)
    fit = _fit_poisson(long["y"].to_numpy(float), X, long["exp"].to_numpy(float), np.ones(len(long)),
                       long["pid"].to_numpy())
    return _ratio(fit, "post") | {"persons": int(len(t))}


def _quarter_exposure(df: pd.DataFrame, window: int, lo: pd.Timestamp, hi: pd.Timestamp) -> dict[str, np.ndarray]:
    idx, enr = pd.to_datetime(df["index_date"]), pd.to_datetime(df["enroll_date"])
    out = {}
    for q in range(1, 5):
        a = idx - pd.to_timedelta(q * window // 4, unit="D")
        b = idx - pd.to_timedelta((q - 1) * window // 4, unit="D")
        out[f"q-{q}"] = np.clip((b - np.maximum(a, lo)).dt.days.to_numpy(), 0, None)
        a = enr + pd.to_timedelta((q - 1) * window // 4, unit="D")
        b = enr + pd.to_timedelta(q * window // 4, unit="D")
        out[f"q{q}"] = np.clip((np.minimum(b, hi) - a).dt.days.to_numpy(), 0, None)
    return out


PERIODS = ("q-4", "q-3", "q-2", "q-1", "q1", "q2", "q3", "q4")


def event_study(df: pd.DataFrame, outcome: str, window: int, lo, hi) -> list[dict[str, Any]]:
    """Rate ratio participants / comparison per quarter before the index event and after enrollment, relative to
    the quarter just before the index event (``q-1``): Poisson with quarter and group terms, matching weights,
    clustered by person. Flat before, the effect after, if the comparison is apt."""
    m = df[df["matched"]].reset_index(drop=True)
    expo = _quarter_exposure(m, window, pd.Timestamp(lo), pd.Timestamp(hi))
    parts = []
    for p in PERIODS:
        parts.append(pd.DataFrame({"pid": m["person_key"], "y": m[f"{outcome}_{p}"], "exp": expo[p], "period": p,
                                   "treated": m["treated"], "w": m["w"]}))
    long = pd.concat(parts, ignore_index=True)
    long = long[(long["exp"] > 0) & (long["w"] > 0)]
    X = pd.DataFrame({"const": 1.0, "treated": long["treated"]}, index=long.index)
    for p in PERIODS:
        if p != "q-1":
            X[f"p_{p}"] = (long["period"] == p).astype(float)
            X[f"t_{p}"] = X[f"p_{p}"] * long["treated"]
    keep = [c for c in X.columns if X[c].abs().sum() > 0]
    fit = _fit_poisson(long["y"].to_numpy(float), X[keep].astype(float), long["exp"].to_numpy(float),
                       long["w"].to_numpy(float), long["pid"].to_numpy())
    rows = []
    for p in PERIODS:
        if p == "q-1":
            rows.append({"period": p, "estimate": 1.0, "low": 1.0, "high": 1.0, "reference": True})
        elif f"t_{p}" in fit.params.index:
            rows.append({"period": p, **_ratio(fit, f"t_{p}"), "reference": False})
        else:
            rows.append({"period": p, "estimate": float("nan"), "low": float("nan"), "high": float("nan"),
                         "reference": False})
    return rows


def cox_hazard_ratio(df: pd.DataFrame) -> dict[str, Any]:
    """Hazard ratio participants / comparison of the first survival-outcome event after (pseudo-)enrollment,
    censored at the end of the data: Cox model with matching weights and robust (sandwich) errors."""
    from lifelines import CoxPHFitter

    m = df[df["matched"] & (df["w"] > 0)][["time", "event", "treated", "w"]].astype(float)
    if m["event"].sum() == 0 or m["treated"].nunique() < 2:
        return {"estimate": float("nan"), "low": float("nan"), "high": float("nan"), "p_value": float("nan"),
                "events": int(m["event"].sum()), "persons": int(len(m))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(m, duration_col="time", event_col="event", weights_col="w", robust=True)
    b, se = float(cph.params_["treated"]), float(cph.standard_errors_["treated"])
    return {"estimate": float(np.exp(b)), "low": float(np.exp(b - Z * se)), "high": float(np.exp(b + Z * se)),
            "p_value": float(2 * stats.norm.sf(abs(b / se))), "log_estimate": b, "se": se,
            "events": int(m["event"].sum()), "persons": int(len(m))}


def kaplan_meier(df: pd.DataFrame, step_days: int = 30, horizon_days: int = 730) -> list[dict[str, Any]]:
    """Weighted Kaplan-Meier survival of each group at every ``step_days`` up to ``horizon_days``, with the
    unweighted persons at risk and events in each interval (what the disclosure checks read)."""
    from lifelines import KaplanMeierFitter

    m = df[df["matched"] & (df["w"] > 0)]
    grid = np.arange(0, horizon_days + 1, step_days)
    rows = []
    for g, part in m.groupby("treated"):
        kmf = KaplanMeierFitter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kmf.fit(part["time"], part["event"], weights=part["w"])
        surv = kmf.survival_function_at_times(grid).to_numpy()
        t, e = part["time"].to_numpy(), part["event"].to_numpy()
        for i, day in enumerate(grid):
            prev = grid[i - 1] if i else -1
            rows.append({"group": "participants" if g == 1 else "comparison", "day": int(day),
                         "survival": float(surv[i]), "at_risk": int((t > prev).sum()) if i else int(len(t)),
                         "events": int(((t > prev) & (t <= day) & (e == 1)).sum()) if i else 0})
    return rows


def _area_fit(panel: pd.DataFrame) -> dict[str, Any]:
    """Poisson with tract and month fixed effects, treated x post; errors clustered by tract (t with G-1 df)."""
    X = pd.get_dummies(panel[["tract"]].astype(str), drop_first=True, dtype=float)
    X = pd.concat([X, pd.get_dummies(panel["month"].dt.strftime("%Y-%m"), prefix="m", drop_first=True, dtype=float)],
                  axis=1)
    X["treated_post"] = (panel["treated"] * panel["post"]).astype(float)
    X.insert(0, "const", 1.0)
    keep = [c for c in X.columns if c == "const" or X[c].abs().sum() > 0]
    y = panel["n"].to_numpy(float)
    fit = _fit_poisson(y, X[keep], np.ones(len(panel)), np.ones(len(panel)), panel["tract"].to_numpy())
    out = _ratio(fit, "treated_post", df_t=int(panel["tract"].nunique()) - 1)
    # few treated tracts make clustered errors unreliable, and one incident counts once per person in it:
    # take the larger of the clustered and the overdispersed (quasi-Poisson) model error, whichever is wider
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quasi = sm.GLM(y, X[keep], family=sm.families.Poisson()).fit(scale="X2")
    # (x sqrt 2: a design-effect allowance for the serial correlation of a tract's months, which the quasi-Poisson
    # error treats as independent; the same person is behind several of a tract's incidents. Calibrated on the
    # simulator's seeds: docs/evaluation.md)
    se = max(out.get("se", 0.0), float(quasi.bse["treated_post"]) * np.sqrt(2.0))
    if np.isfinite(se) and se > 0:
        b, crit = out["log_estimate"], stats.t.ppf(0.975, int(panel["tract"].nunique()) - 1)
        out |= {"low": float(np.exp(b - crit * se)), "high": float(np.exp(b + crit * se)), "se": se,
                "p_value": float(2 * stats.t.sf(abs(b / se), int(panel["tract"].nunique()) - 1))}
    return out


def _comparable(panel: pd.DataFrame, treated_tracts: list[str], pool: list[str], per_tract: int) -> list[str]:
    """For each treated tract, the ``per_tract`` pool tracts nearest in mean monthly count before the start."""
    pre = panel[panel["post"] == 0].groupby("tract")["n"].mean()
    chosen: list[str] = []
    for t in sorted(treated_tracts, key=lambda x: -pre.get(x, 0.0)):
        left = [p for p in pool if p not in chosen]
        left.sort(key=lambda p: (abs(pre.get(p, 0.0) - pre.get(t, 0.0)), p))
        chosen += left[:per_tract]
    return chosen


def area_did(panel: pd.DataFrame, *, per_tract: int = 4) -> dict[str, Any]:
    """A comparative interrupted time series: the priority area's tracts against the tracts most like them
    before the start (pre-period monthly level), monthly counts, tract and month fixed effects, the rate ratio
    after/before the start relative to the comparison tracts. Placebo tests: the same model with a start date
    a year and two years earlier on the pre-period only (should find nothing), and with each other priority
    area as if it were treated."""
    treated = sorted(panel.loc[panel["treated"] == 1, "tract"].unique())
    others = panel.loc[panel["treated"] == 0, ["tract", "priority_area"]].drop_duplicates()
    pool = sorted(others.loc[others["priority_area"] == "", "tract"])
    comp = _comparable(panel, treated, pool, per_tract)
    use = panel[panel["tract"].isin(treated + comp)].copy()
    main = _area_fit(use)
    placebos = []
    start = use.loc[use["post"] == 1, "month"].min()
    for years in (1, 2):
        fake = start - pd.DateOffset(years=years)
        pre = use[use["post"] == 0].copy()
        if (pre["month"] >= fake).sum() and (pre["month"] < fake).sum():
            pre["post"] = (pre["month"] >= fake).astype(int)
            placebos.append({"kind": "in time", "label": f"start {fake:%Y-%m} (pre-period only)", **_area_fit(pre)})
    for area in sorted(a for a in others["priority_area"].unique() if a):
        fake_t = sorted(others.loc[others["priority_area"] == area, "tract"])
        fake_c = _comparable(panel, fake_t, pool, per_tract)
        part = panel[panel["tract"].isin(fake_t + fake_c)].copy()
        part["treated"] = part["tract"].isin(fake_t).astype(int)
        placebos.append({"kind": "in space", "label": area, **_area_fit(part)})
    bigger = sum(abs(p.get("log_estimate", 0.0)) >= abs(main.get("log_estimate", 0.0)) for p in placebos)
    return {"estimate": main, "treated_tracts": len(treated), "comparison_tracts": len(comp),
            "placebos": placebos, "placebo_rank_p": (1 + bigger) / (1 + len(placebos)),
            "series": use.assign(group=np.where(use["treated"] == 1, "priority area", "comparison tracts"))
            .groupby(["group", "month"], as_index=False)["n"].sum()}
