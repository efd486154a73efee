"""Attack 3: Bloom filter pattern mining, seeded by names decoded from the side tokens.

After Niedermeyer et al. (2014) and Christen, Ranbaduge, Vatsalan, Schnell (2017, 2018). The kit's name
filters are keyed but *unsalted and per bigram*: one bigram always sets the same (at most k = 12)
positions, in every record, in first-name and surname filters alike (one "name" domain, one Bloom key).
Once a few dozen filters are known to hold names the attacker knows, the positions of their bigrams
follow, and with them every other filter:

1. **Seeds**: the most confident guesses of another attack (default: :mod:`side_tokens`, the 50 best).
   For free on top: the positions of every leading bigram " J", " M", ...: the AND of all first-name
   filters that share a first-initial token (hundreds of filters: exact). k is read off their size.
2. **Learn** each bigram's positions from the decoded filters that contain it: the AND of those filters
   (with >= 5 of them: positions set in >= 80 %, which survives a wrong decoding), minus the positions of
   bigrams already known that occur in (nearly) all of them ("explaining away": MICHAEL and MICHELLE alone
   cannot separate MI from IC, but IC known from ERIC can). A bigram is *known* when k-2..k positions
   remain; *partly known* when it has support but more positions (some spurious).
3. **Decode** every other filter against every listed name with the same leading bigram: positions the
   name's known bigrams predict but the filter lacks (impossible for the right name), positions the
   filter has that no bigram of the name explains (must come from the name's still-unknown bigrams, about
   10 each), plus the fit of the token's first-name / surname counts to the name's reference frequency.
   The posterior over the candidates is the confidence. A filter wholly explained by known bigrams whose
   name is not listed (typos, compound surnames) is spelt out from its bigram set (a walk from " X" to
   "Y " using every bigram).
4. Confident decodings (>= 0.9) teach more bigrams; repeat until nothing changes; then keep the best
   guess for every filter, whatever its confidence.

Balanced filters (filter || complement, permuted) are first undone: each position has a partner that is
its complement in every filter, and the sparser of the two is the original bit.

Popcount, which reveals the number of distinct bigrams and so the name's length, is used implicitly: the
name must explain every set bit. Tokens whose filter stays undecoded keep the seed attack's guess.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.attacks import side_tokens
from bench.attacks.common import ALPHABET, N_BIGRAMS, Guesses, bigram_index, load_zone, name_ok
from bench.attacks.reference import Reference
from bench.attacks.side_tokens import DISPERSION_FIRST, DISPERSION_LAST, FLOOR, deviance, name_tokens

__all__ = ["attack", "decode_filters"]

ACCEPT = 0.9  # confidence needed to learn from a decoding
LEAD_CONF = 0.2  # letter posterior needed to name a first-initial group's leading bigram
SEED_POOL = 300  # candidate seeds (the seed attack's most confident guesses) checked for mutual consistency
MAX_ROUNDS = 40
DFS_BUDGET = 20_000  # node expansions per filter when spelling a name out of its bigrams
ZONE_COLUMNS = ("enc_fn_full", "enc_ln_full", "enc_dob_full", "enc_fn_init", "enc_fn_phon", "enc_ln_phon",
                "enc_ln_part1", "enc_ln_part2", "enc_fn_bf", "enc_ln_bf")
# scoring (log-likelihood units)
W_MISS_KNOWN = 4.0  # per position a known bigram of the name sets that the filter lacks
W_MISS_PARTIAL = 0.7  # the same for a partly known bigram (its estimate still has spurious positions)
W_EXTRA = 3.0  # per set position no bigram of the name explains, when all its bigrams have estimates
W_UNKNOWN = 1.0  # per bigram of the name with no estimate at all
NEW_BITS = 9.5  # positions an unknown bigram adds on average (k minus overlaps with the rest)
MIN_NEW_BITS = 4  # ... and at least (overlap of 8 of its positions with the rest: rare)


def attack(linkage_db: Path, reference: Reference, *, seeds: int = 50, seed_attack: str = "side_tokens") -> Guesses:
    df = load_zone(linkage_db, ZONE_COLUMNS)
    tokens = name_tokens(df)
    group = lead_groups(tokens)
    shared = shared_domain(tokens)
    if seed_attack == "side_tokens":
        # the filters give the side-token attack its letter groups for surnames too (leading bigram)
        seed_guesses, seed_notes = side_tokens.align(tokens, reference, group=group if shared else None)
    else:
        from bench.attacks import frequency

        g = frequency.attack(linkage_db, reference)
        seed_guesses, seed_notes = g.tokens, g.notes
    guesses, notes = decode_names(tokens, seed_guesses, reference, seeds=seeds, shared=shared)
    notes["seed_attack"] = {"name": seed_attack, **seed_notes}
    return Guesses("bloom", guesses, notes)


def lead_groups(tokens: pd.DataFrame) -> pd.Series | None:
    """token -> first-initial token, for every token whose filter holds exactly one group's leading bigram.

    The AND of the filters of all first names with one initial token is that initial's leading bigram
    (" J"): exact, from hundreds of filters. A surname filter holding exactly one of those is in that group.
    """
    if "bf" not in tokens or "init" not in tokens or tokens["init"].isna().all():
        return None
    tk = tokens.dropna(subset=["bf"])
    if tk.empty:
        return None
    bits = np.unpackbits(np.frombuffer(b"".join(tk["bf"]), dtype=np.uint8).reshape(len(tk), -1),
                         axis=1).astype(bool)
    fn = (tk["nf"] > 0).to_numpy() & tk["init"].notna().to_numpy()
    inits, masks = [], []
    for init in sorted(tk.loc[fn, "init"].unique()):
        rows = np.flatnonzero(fn & (tk["init"] == init).to_numpy())
        if len(rows) >= 3:
            inits.append(init)
            masks.append(bits[rows].all(axis=0))
    if not masks:
        return None
    m = np.array(masks)
    contains = ~((m[None, :, :] & ~bits[:, None, :]).any(axis=2))  # [tokens, groups]
    one = contains.sum(axis=1) == 1
    g = np.where(one, np.array(inits, dtype=object)[contains.argmax(axis=1)], None)
    out = pd.Series(g, index=tk["token"].to_numpy())
    own = tk.loc[fn, ["token", "init"]].set_index("token")["init"]  # first names keep their own
    out.loc[own.index] = own
    return out.dropna()


def decode_names(tokens: pd.DataFrame, seed_guesses: pd.DataFrame, reference: Reference, *, seeds: int = 50,
                 shared: bool = True) -> tuple[pd.DataFrame, dict]:
    """:func:`decode_filters` on all name filters at once (one domain), or per column (separate keys)."""
    if shared:
        return decode_filters(tokens, seed_guesses, reference, n_seeds=seeds)
    parts, notes = [], {"shared_domain": False}
    for column, which in (("enc_fn_full", tokens["nf"] > 0), ("enc_ln_full", (tokens["nl"] > 0) & (tokens["nf"] == 0))):
        g_col, n_col = decode_filters(tokens[which].copy(), seed_guesses[seed_guesses["column"] == column],
                                      reference, n_seeds=seeds)
        parts.append(g_col[g_col["column"] == column])
        notes[column] = n_col
    return pd.concat(parts, ignore_index=True), notes


def unbalance(bits: np.ndarray) -> tuple[np.ndarray, bool]:
    """Undo balanced filters (filter || complement under a fixed permutation, Schnell 2016).

    Every filter then has exactly half its bits set, and each position has a partner that is its
    complement in every filter. Keep the sparser of each pair: that is the original filter, in some order
    of positions (the attack never needs the kit's order). Filters that are not balanced come back as they
    are."""
    n, m = bits.shape
    if n < 50 or m % 128 or not (bits.sum(axis=1) == m // 2).all():
        return bits, False
    cols = np.packbits(bits, axis=0).T  # one byte string per position
    groups: dict[bytes, list[int]] = defaultdict(list)  # positions set in exactly the same filters
    for j, c in enumerate(cols):
        groups[c.tobytes()].append(j)
    keep, done = [], set()
    for key, members in groups.items():
        if key in done:
            continue
        comp = np.packbits(~bits[:, members[0]]).tobytes()
        partners = groups.get(comp)
        if partners is None or len(partners) != len(members):
            return bits, False
        done |= {key, comp}
        keep += members if bits[:, members[0]].sum() <= bits[:, partners[0]].sum() else partners
    if len(keep) * 2 != m:
        return bits, False
    return np.ascontiguousarray(bits[:, sorted(keep)]), True


def shared_domain(tokens: pd.DataFrame) -> bool:
    """Are first and last names encoded in one domain? Then some tokens occur in both columns (names that
    are both, swapped fields); under separate keys none can."""
    both = ((tokens["nf"] > 0) & (tokens["nl"] > 0)).sum()
    return bool(both >= max(3, 0.005 * len(tokens)))


# ------------------------------------------------------------------------------------------------ helpers
_BG_CACHE: dict[str, list[int]] = {}


def _name_bigrams(name: str) -> list[int]:
    hit = _BG_CACHE.get(name)
    if hit is None:
        padded = f" {name} "
        hit = sorted({bigram_index(padded[i: i + 2]) for i in range(len(padded) - 1)})
        _BG_CACHE[name] = hit
    return hit


def _pack(bits: np.ndarray) -> np.ndarray:
    """bool [n, nbits] -> uint64 [n, nbits/64]."""
    return np.packbits(bits.astype(np.uint8), axis=1).view(">u8").astype(np.uint64)


def _popcount_rows(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x).sum(axis=-1)


def _spell(bigram_set: set[int], budget: int = DFS_BUDGET) -> list[str]:
    """Strings whose padded bigram set is exactly ``bigram_set`` (shortest first, at most 20)."""
    n_sym = len(ALPHABET)
    out_edges: dict[int, list[int]] = defaultdict(list)
    for b in bigram_set:
        out_edges[b // n_sym].append(b % n_sym)
    if 0 not in out_edges or not any(b % n_sym == 0 for b in bigram_set):
        return []
    need = len(bigram_set)
    max_len = need + 3
    found: list[str] = []
    expansions = 0
    stack: list[tuple[int, frozenset, str]] = [(0, frozenset(), "")]
    while stack and expansions < budget and len(found) < 20:
        node, used, s = stack.pop()
        expansions += 1
        for nxt in out_edges.get(node, ()):
            b = node * n_sym + nxt
            u2 = used | {b}
            if nxt == 0:
                if len(u2) == need and s:
                    found.append(s)
                continue
            if len(s) + 1 > max_len or need - len(u2) > max_len - len(s):
                continue
            stack.append((nxt, u2, s + ALPHABET[nxt]))
    return sorted(set(found), key=lambda x: (len(x), x))


@dataclass
class _Model:
    """What is known about each bigram's positions (bool [N_BIGRAMS, nbits] and flags)."""

    est: np.ndarray  # estimated positions
    support: np.ndarray  # decoded filters holding the bigram
    known: np.ndarray  # est has k-2..k positions
    partial: np.ndarray  # supported, not known, est small enough to be useful (<= 2k)


def _learn(decoded: dict[int, tuple[str, float, str]], filt_bits: np.ndarray, fixed: dict[int, np.ndarray],
           k: int) -> _Model:
    nbits = filt_bits.shape[1]
    sums = np.zeros((N_BIGRAMS, nbits), dtype=np.int32)
    counts = np.zeros(N_BIGRAMS, dtype=np.int32)
    co = np.zeros((N_BIGRAMS, N_BIGRAMS), dtype=np.int32)
    fi_list, b_list, pair_a, pair_b = [], [], [], []
    for fi, (name, _conf, _how) in decoded.items():
        bgs = _name_bigrams(name)
        fi_list += [fi] * len(bgs)
        b_list += bgs
        pair_a += [a for a in bgs for _ in bgs]
        pair_b += bgs * len(bgs)
    if fi_list:
        np.add.at(sums, np.array(b_list), filt_bits[np.array(fi_list)])
        np.add.at(counts, np.array(b_list), 1)
        np.add.at(co, (np.array(pair_a), np.array(pair_b)), 1)
    thr = np.where(counts < 5, counts, np.ceil(0.8 * counts)).astype(np.int32)
    upper = (sums >= thr[:, None]) & (counts > 0)[:, None]
    cooc = (co >= thr[:, None]) & (counts > 0)[:, None]
    np.fill_diagonal(cooc, False)
    fixed_idx = np.array(sorted(fixed), dtype=np.int64)
    for b, m in fixed.items():
        upper[b] = m
        counts[b] = max(counts[b], 1000)
    lo = max(1, k - 2)
    est = upper.copy()
    known = np.zeros(N_BIGRAMS, dtype=bool)
    for _ in range(4):  # explaining away, to a fixed point (a few rounds suffice)
        pc = est.sum(axis=1)
        known = (pc >= lo) & (pc <= k) & (counts > 0)
        if fixed_idx.size:
            known[fixed_idx] = True
        kn = np.flatnonzero(known)
        if kn.size == 0:
            break
        removal = (cooc[:, kn].astype(np.float32) @ est[kn].astype(np.float32)) > 0
        new = upper & ~removal
        if fixed_idx.size:
            new[fixed_idx] = upper[fixed_idx]
        if np.array_equal(new, est):
            break
        est = new
    pc = est.sum(axis=1)
    known = (pc >= lo) & (pc <= k) & (counts > 0)
    if fixed_idx.size:
        known[fixed_idx] = True
    partial = ~known & (counts > 0) & (pc > k) & (pc <= 2 * k)
    return _Model(est, counts, known, partial)


def decode_filters(tokens: pd.DataFrame, seed_guesses: pd.DataFrame, reference: Reference, *,
                   n_seeds: int = 50, k: int | None = None) -> tuple[pd.DataFrame, dict]:
    """The attack on a token table (``side_tokens.name_tokens`` with ``bf``) and a seed attack's guesses."""
    notes: dict = {}
    tk = tokens.dropna(subset=["bf"]).copy() if "bf" in tokens else tokens.iloc[0:0]
    if tk.empty:
        return seed_guesses, {"filters": 0}
    filters = list(dict.fromkeys(tk["bf"]))
    fidx = {f: i for i, f in enumerate(filters)}
    tk["fi"] = tk["bf"].map(fidx)
    filt_bits = np.unpackbits(np.frombuffer(b"".join(filters), dtype=np.uint8).reshape(len(filters), -1),
                              axis=1).astype(bool)
    filt_bits, notes["unbalanced"] = unbalance(filt_bits)
    filt_pk = _pack(filt_bits)
    per_f = tk.groupby("fi").agg(nf=("nf", "sum"), nl=("nl", "sum")).reindex(range(len(filters)), fill_value=0)
    nf, nl = per_f["nf"].to_numpy(), per_f["nl"].to_numpy()
    n_first, n_last = tk["nf"].sum(), tk["nl"].sum()
    rel = reference.names.rel_error

    # dictionary: every listed name (first or last) with its expected counts and bigrams
    ref = side_tokens.reference_names(reference, n_first, n_last)
    ref = ref[ref["name"].map(name_ok)].reset_index(drop=True)
    d_names = ref["name"].tolist()
    d_ef, d_el = ref["ef"].to_numpy(), ref["el"].to_numpy()
    d_member = np.zeros((len(d_names), N_BIGRAMS), dtype=bool)
    for j, n in enumerate(d_names):
        d_member[j, _name_bigrams(n)] = True
    d_lead = np.array([bigram_index(" " + n[0]) for n in d_names])

    # leading-bigram positions from first-initial groups; k from their size
    fixed: dict[int, np.ndarray] = {}
    k_used = k or 12
    if tk["init"].notna().any():
        letters = side_tokens.decode_initials(tk, ref, lead_groups(tk))
        sizes = []
        for init, g in tk[tk["nf"] > 0].dropna(subset=["init"]).groupby("init"):
            fis = g["fi"].unique()
            if len(fis) < 3:
                continue
            m = filt_bits[fis].all(axis=0)
            sizes.append(int(m.sum()))
            letter, conf = letters.get(init, (None, 0.0))
            if letter and conf >= LEAD_CONF:
                fixed[bigram_index(" " + letter)] = m
        if k is None and sizes:
            k_used = int(np.median(sizes))
    notes["k_inferred"], notes["leading_bigrams_from_initials"] = k_used, len(fixed)

    # seeds
    sg = seed_guesses.merge(tk[["token", "fi", "nf", "nl"]], on="token", how="inner")
    sg = sg[sg["guess"].map(lambda v: isinstance(v, str) and name_ok(v))]
    sg = sg.assign(n=sg["nf"] + sg["nl"]).sort_values(["confidence", "n"], ascending=False).drop_duplicates("fi")
    sg = sg.drop_duplicates("guess")
    pool = sg.head(SEED_POOL)
    keep = _consistent_seeds(pool["fi"].to_numpy(), pool["guess"].tolist(), filt_bits, k_used)
    notes["seed_pool"], notes["seed_pool_consistent"] = len(pool), int(keep.sum())
    seeds_df = pool[keep].head(n_seeds)
    decoded: dict[int, tuple[str, float, str]] = {
        int(r.fi): (r.guess, float(r.confidence), "seed") for r in seeds_df.itertuples()}
    notes["seeds"] = len(decoded)

    ctx = _Ctx(filt_bits, filt_pk, nf, nl, d_names, d_ef, d_el, d_member, d_lead, rel, k_used)
    # compound surnames: the part tokens are ordinary name tokens (one domain), decoded with the rest
    tok_fi = dict(zip(tk["token"], tk["fi"], strict=True))
    compounds = []
    if "part1" in tk and "part2" in tk:
        for r in tk.dropna(subset=["part1", "part2"]).itertuples():
            compounds.append((int(r.fi), r.part1, r.part2))
    notes["compound_surnames"] = len(compounds)
    rounds = []
    for _ in range(MAX_ROUNDS):
        model = _learn(decoded, filt_bits, fixed, k_used)
        dropped = _drop_contradicted(model, decoded, ctx)
        new = _decode_exact(model, decoded, ctx, accept=ACCEPT)
        new += _decode_compounds(model, decoded, ctx, compounds, tok_fi)
        rounds.append({"known_bigrams": int(model.known.sum()), "partial_bigrams": int(model.partial.sum()),
                       "dropped": dropped, "new": new, "decoded": len(decoded)})
        if new == 0 or (len(rounds) >= 3 and len(decoded) <= rounds[-3]["decoded"]):
            break  # nothing new, or going round in circles (the same few decodings dropped and re-made)
    model = _learn(decoded, filt_bits, fixed, k_used)
    _decode_compounds(model, decoded, ctx, compounds, tok_fi)
    rounds.append({"exact_pass_new": _decode_exact(model, decoded, ctx, accept=0.0),
                   "scored_pass_new": _decode_round(model, decoded, ctx, accept=0.0)})
    notes["rounds"], notes["filters"], notes["decoded_filters"] = rounds, len(filters), len(decoded)
    notes["how"] = pd.Series([v[2] for v in decoded.values()]).value_counts().to_dict()

    rows, hows = [], []
    fi_tokens = tk.groupby("fi")
    for fi, (name, conf, how) in decoded.items():
        for r in fi_tokens.get_group(fi).itertuples():
            for column, n in (("enc_fn_full", r.nf), ("enc_ln_full", r.nl)):
                if n > 0:
                    rows.append((column, r.token, name, conf))
                    hows.append(how)
    out = Guesses.frame(rows).assign(how=hows)
    # tokens whose filter stayed undecoded keep the seed attack's guess
    have = set(zip(out["column"], out["token"], strict=True))
    rest = seed_guesses[[(c, t) not in have for c, t in zip(seed_guesses["column"], seed_guesses["token"],
                                                            strict=True)]]
    return pd.concat([out, rest], ignore_index=True), notes


def _consistent_seeds(fis: np.ndarray, names: list[str], filt_bits: np.ndarray, k: int) -> np.ndarray:
    """Which candidate seeds agree with each other under the Bloom model (mask of the seeds kept).

    Two filters of names sharing s bigrams share about s * k' positions (k' = positions per bigram) plus
    chance overlap of the rest; a wrongly named filter does not match that prediction with the others.
    A pair agrees when names sharing bigrams overlap as predicted, and contradicts when the overlap is far
    off; the seed with the most contradictions net of agreements goes first, while seeds
    contradict more kept seeds than they agree with (right seeds contradict only wrong ones, wrong ones
    contradict nearly all).
    """
    n = len(fis)
    if n < 3:
        return np.ones(n, dtype=bool)
    nbits = filt_bits.shape[1]
    member = np.zeros((n, N_BIGRAMS), dtype=np.float32)
    for i, name in enumerate(names):
        member[i, _name_bigrams(name)] = 1.0
    shared = member @ member.T
    f = filt_bits[fis].astype(np.float32)
    overlap = f @ f.T
    pc = f.sum(axis=1)
    per = k * (1 - (k - 1) / (2 * nbits))  # distinct positions a bigram sets
    own = np.minimum(shared * per, np.minimum.outer(pc, pc))
    rest_i, rest_j = (pc[:, None] - own), (pc[None, :] - own)
    pred = own + np.clip(rest_i, 0, None) * np.clip(rest_j, 0, None) / np.maximum(nbits - own, 1)
    dev = np.abs(overlap - pred)
    sd = np.sqrt(per) + 1.0  # spread of the deviation between two right names (~2.5 positions at k = 12)
    pos = (shared > 0) & (dev <= 2.4 * sd)  # the bigrams the names share are there
    neg = dev > 3.6 * sd  # they are not, or the filters share positions the names do not explain
    np.fill_diagonal(pos, False)
    np.fill_diagonal(neg, False)
    keep = np.ones(n, dtype=bool)
    # drop the seed in most conflict with the rest while it contradicts more kept seeds than it agrees with
    while keep.sum() > 3:
        conflict = (neg[:, keep].sum(axis=1) - pos[:, keep].sum(axis=1)).astype(float)
        conflict[~keep] = -np.inf
        worst = int(np.argmax(conflict))
        if conflict[worst] <= 0:
            break
        keep[worst] = False
    return keep


@dataclass
class _Ctx:
    filt_bits: np.ndarray
    filt_pk: np.ndarray
    nf: np.ndarray
    nl: np.ndarray
    d_names: list[str]
    d_ef: np.ndarray
    d_el: np.ndarray
    d_member: np.ndarray
    d_lead: np.ndarray
    rel: float
    k: int


def _drop_contradicted(model: _Model, decoded: dict, ctx: _Ctx) -> int:
    """Forget decodings a known bigram of which the filter lacks (they were wrong, or a seed was)."""
    drop = []
    for fi, (name, _c, _how) in decoded.items():
        bgs = [b for b in _name_bigrams(name) if model.known[b]]
        if bgs and (model.est[bgs] & ~ctx.filt_bits[fi]).any():
            drop.append(fi)
    for fi in drop:
        del decoded[fi]
    return len(drop)


def _decode_exact(model: _Model, decoded: dict, ctx: _Ctx, *, accept: float) -> int:
    """Decode filters by the exact set of known bigrams they contain (the learning step: few errors).

    A listed name qualifies when its known bigrams are exactly those the filter contains; the positions
    those leave unexplained must then come from the name's other bigrams (none left: no such positions;
    u left: at most k each). Among the qualifying names the token's counts choose.
    """
    kn = np.flatnonzero(model.known)
    if kn.size == 0:
        return 0
    known_set = set(kn.tolist())
    todo = np.array([fi for fi in range(len(ctx.filt_pk)) if fi not in decoded], dtype=np.int64)
    if todo.size == 0:
        return 0
    known_pk = _pack(model.est[kn])
    contains = np.zeros((todo.size, kn.size), dtype=bool)
    for s in range(0, todo.size, 256):
        f = ctx.filt_pk[todo[s: s + 256]]
        contains[s: s + 256] = ((known_pk[None, :, :] & ~f[:, None, :]) == 0).all(axis=2)
    index: dict[frozenset, list[int]] = defaultdict(list)
    n_unknown = np.zeros(len(ctx.d_names), dtype=np.int32)
    for j in range(len(ctx.d_names)):
        bgs = _name_bigrams(ctx.d_names[j])
        kb = frozenset(b for b in bgs if b in known_set)
        n_unknown[j] = len(bgs) - len(kb)
        index[kb].append(j)
    new = 0
    for row, fi in enumerate(todo.tolist()):
        det = kn[contains[row]]
        resid = int((ctx.filt_bits[fi] & ~model.est[det].any(axis=0)).sum()) if det.size else \
            int(ctx.filt_bits[fi].sum())
        cands = index.get(frozenset(det.tolist()), [])
        guess = None
        if resid == 0:
            exact = [j for j in cands if n_unknown[j] == 0]
            if exact:
                guess = _pick(np.array(exact), ctx, fi, 0.99)
            elif det.size:
                spelt = _spell(set(det.tolist()))
                if spelt:
                    shortest = [x for x in spelt if len(x) == len(spelt[0])]
                    guess = (shortest[0], 0.95 / len(shortest), "spelt")
        else:
            # each unknown bigram adds its own positions: between MIN_NEW_BITS and k of them
            ok = [j for j in cands if n_unknown[j] >= 1 and MIN_NEW_BITS * n_unknown[j] <= resid <= ctx.k * n_unknown[j]]
            if ok:
                guess = _pick(np.array(ok), ctx, fi, 0.95)
        if guess and guess[1] >= accept:
            decoded[fi] = guess
            new += 1
    return new


class _Joins:
    """Two listed surnames written as one word (GARCIALOPEZ), for filters no single name explains."""

    def __init__(self, model: _Model, ctx: _Ctx):
        self.model, self.ctx = model, ctx
        n_sym = len(ALPHABET)
        self.sur = np.flatnonzero(ctx.d_el > 0)
        names = [ctx.d_names[j] for j in self.sur]
        est_pk = _pack(model.est) * model.known[:, None]  # known bigrams only
        self.est_pk, self.known = est_pk, model.known

        def masks(drop_lead: bool) -> tuple[np.ndarray, np.ndarray]:
            pk = np.zeros((len(names), est_pk.shape[1]), dtype=np.uint64)
            unk = np.zeros(len(names), dtype=np.int32)
            for i, n in enumerate(names):
                padded = f"{n} " if drop_lead else f" {n}"
                bgs = {bigram_index(padded[x: x + 2]) for x in range(len(padded) - 1)}
                for b in bgs:
                    if model.known[b]:
                        pk[i] |= est_pk[b]
                    else:
                        unk[i] += 1
            return pk, unk

        self.head_pk, self.head_u = masks(drop_lead=False)  # " NAME" (no trailing bigram): a first part
        self.tail_pk, self.tail_u = masks(drop_lead=True)  # "NAME " (no leading bigram): a second part
        self.first = np.array([ALPHABET.index(n[0]) for n in names])
        self.last = np.array([ALPHABET.index(n[-1]) for n in names])
        self.n_sym = n_sym
        self.pos = {j: i for i, j in enumerate(self.sur)}

    def search(self, fi: int, prefixes: list[int]) -> tuple[str, float, str] | None:
        ctx, f = self.ctx, self.ctx.filt_pk[fi]
        best: list[tuple[float, str, int]] = []
        for j in prefixes:
            if j not in self.pos:
                continue
            i = self.pos[j]
            for as_head in (True, False):
                if as_head:  # NAME + w
                    junction = self.last[i] * self.n_sym + self.first
                    pk = self.head_pk[i] | self.est_pk[junction] | self.tail_pk
                    u = self.head_u[i] + (~self.known[junction]) + self.tail_u
                    texts = [(ctx.d_names[j], ctx.d_names[w]) for w in self.sur]
                else:  # w + NAME
                    junction = self.last * self.n_sym + self.first[i]
                    pk = self.head_pk | self.est_pk[junction] | self.tail_pk[i]
                    u = self.head_u + (~self.known[junction]) + self.tail_u[i]
                    texts = [(ctx.d_names[w], ctx.d_names[j]) for w in self.sur]
                miss = np.bitwise_count(pk & ~f).sum(axis=1)
                extra = np.bitwise_count(f & ~pk).sum(axis=1)
                # at most one bigram without an estimate (the junction, typically): the rest must fit exactly
                ok = (miss == 0) & (u <= 1) & np.where(u == 0, extra == 0, extra <= ctx.k * u)
                for x in np.flatnonzero(ok):
                    best.append((W_UNKNOWN * u[x] + abs(extra[x] - NEW_BITS * u[x]) / 4.0, "".join(texts[x]), int(u[x])))
        if not best:
            return None
        best.sort()
        top = [b for b in best if b[0] == best[0][0]]
        return top[0][1], (0.9 if top[0][2] == 0 else 0.6) / len(top), "joined"


def _decode_compounds(model: _Model, decoded: dict, ctx: _Ctx, compounds: list, tok_fi: dict) -> int:
    """A compound surname's filter, whose two part tokens are decoded, is checked against the two names
    joined (the kit's compact form): every known bigram of the join must be in the filter, no other known
    bigram may be, and the unknown ones must account for the rest."""
    new = 0
    for fi, t1, t2 in compounds:
        if fi in decoded:
            continue
        f1, f2 = tok_fi.get(t1), tok_fi.get(t2)
        if f1 not in decoded or f2 not in decoded:
            continue
        (n1, c1, _), (n2, c2, _) = decoded[f1], decoded[f2]
        name = n1 + n2
        bgs = _name_bigrams(name)
        known_b = [b for b in bgs if model.known[b]]
        f = ctx.filt_bits[fi]
        if known_b and (model.est[known_b] & ~f).any():
            continue
        others = [b for b in np.flatnonzero(model.known) if b not in set(bgs)]
        if others and (~(model.est[others] & ~f).any(axis=1)).any():
            continue  # the filter holds a known bigram the join does not
        resid = int((f & ~model.est[known_b].any(axis=0)).sum()) if known_b else int(f.sum())
        u = len(bgs) - len(known_b)
        if (u == 0 and resid == 0) or (u > 0 and resid <= ctx.k * u):
            decoded[fi] = (name, min(c1, c2) * (0.99 if u == 0 else 0.9), "compound")
            new += 1
    return new


def _pick(cands: np.ndarray, ctx: _Ctx, fi: int, scale: float) -> tuple[str, float, str]:
    ll = -0.5 * (deviance(ctx.nf[fi], ctx.d_ef[cands] + FLOOR, DISPERSION_FIRST, ctx.rel)
                 + deviance(ctx.nl[fi], ctx.d_el[cands] + FLOOR, DISPERSION_LAST, ctx.rel))
    w = np.exp(ll - ll.max())
    best = int(np.argmax(w))
    return ctx.d_names[int(cands[best])], float(scale * w[best] / w.sum()), "dictionary"


def _decode_round(model: _Model, decoded: dict, ctx: _Ctx, *, accept: float) -> int:
    """Score every undecoded filter against the listed names; keep guesses with confidence >= ``accept``."""
    kn, pa_ = np.flatnonzero(model.known), np.flatnonzero(model.partial)
    if kn.size == 0:
        return 0
    member = ctx.d_member.astype(np.float32)
    est = model.est.astype(np.float32)
    p_known = _pack((member[:, kn] @ est[kn]) > 0)
    p_part = _pack((member[:, pa_] @ est[pa_]) > 0) if pa_.size else np.zeros_like(p_known)
    supported = model.support > 0
    n_unknown = (ctx.d_member & ~supported[None, :]).sum(axis=1)
    known_pk = _pack(model.est[kn])
    lead_known = model.known[ctx.d_lead]

    todo = np.array([fi for fi in range(len(ctx.filt_pk)) if fi not in decoded], dtype=np.int64)
    if todo.size == 0:
        return 0
    # which known bigrams each filter contains (for blocking by leading bigram, and for spelling)
    contains = np.zeros((todo.size, kn.size), dtype=bool)
    for s in range(0, todo.size, 256):
        f = ctx.filt_pk[todo[s: s + 256]]
        contains[s: s + 256] = ((known_pk[None, :, :] & ~f[:, None, :]) == 0).all(axis=2)
    is_lead = (kn // len(ALPHABET)) == 0
    joins = None
    blocks: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for row in range(todo.size):
        blocks[tuple(kn[is_lead & contains[row]].tolist())].append(row)
    new = 0
    for leads, block_rows in blocks.items():
        cand = np.flatnonzero(~lead_known | np.isin(ctx.d_lead, leads)) if leads else np.flatnonzero(~lead_known)
        if cand.size == 0:
            cand = np.arange(len(ctx.d_names))
        step = max(1, 4_000_000 // (cand.size * p_known.shape[1]))  # bounded temporaries (filters x names)
        for at in range(0, len(block_rows), step):
            rows = block_rows[at: at + step]
            f = ctx.filt_pk[todo[rows]]
            pk, pp = p_known[cand], p_part[cand]
            miss_k = np.bitwise_count(pk[None, :, :] & ~f[:, None, :]).sum(axis=2)
            miss_p = np.bitwise_count(pp[None, :, :] & ~(f[:, None, :] | pk[None, :, :])).sum(axis=2)
            extra = np.bitwise_count(f[:, None, :] & ~(pk | pp)[None, :, :]).sum(axis=2)
            u = n_unknown[cand][None, :]
            extra_cost = np.where(u == 0, W_EXTRA * extra, (extra - NEW_BITS * u) ** 2 / (2.0 * 4.0 * np.maximum(u, 1)))
            fis = todo[rows]
            ll = -0.5 * (deviance(ctx.nf[fis][:, None], ctx.d_ef[cand][None, :] + FLOOR, DISPERSION_FIRST, ctx.rel)
                         + deviance(ctx.nl[fis][:, None], ctx.d_el[cand][None, :] + FLOOR, DISPERSION_LAST, ctx.rel))
            score = ll - W_MISS_KNOWN * miss_k - W_MISS_PARTIAL * miss_p - extra_cost - W_UNKNOWN * u
            best = score.argmax(axis=1)
            for i, row in enumerate(rows):
                fi = int(todo[row])
                j = int(best[i])
                w = np.exp(score[i] - score[i, j])
                post = float(1.0 / w.sum())
                perfect = miss_k[i, j] == 0 and extra[i, j] == 0 and u[0, j] == 0 and miss_p[i, j] == 0
                guess = (ctx.d_names[cand[j]], post * (0.99 if perfect else 0.6), "scored")
                if not perfect and miss_k[i, j] == 0 and extra[i, j] > (ctx.k * u[0, j] if u[0, j] else 0):
                    # a listed name explains part of the filter: a compound surname written as one word?
                    if joins is None:
                        joins = _Joins(model, ctx)
                    hit = joins.search(fi, [int(cand[x]) for x in np.argsort(-score[i])[:3] if miss_k[i, x] == 0])
                    if hit:
                        guess = hit
                        decoded[fi] = guess
                        new += 1
                        continue
                if not perfect and (miss_k[i, j] > 0 or u[0, j] == 0):
                    # not a listed name: spell it out if known bigrams explain the whole filter
                    det = kn[contains[row]]
                    if not (ctx.filt_bits[fi] & ~model.est[det].any(axis=0)).any():
                        spelt = _spell(set(det.tolist()))
                        if spelt:
                            shortest = [x for x in spelt if len(x) == len(spelt[0])]
                            guess = (shortest[0], 0.95 / len(shortest), "spelt late")
                if guess[1] >= accept:
                    decoded[fi] = guess
                    new += 1
    return new
