"""What the terminal shows at gates 2-5, and how it reads a person's answers there.

Gate 2 (quality): each finding with its category's label and dimension, and every fix offered
for it with what the fix does and its risk, so a person picks fixes knowing what they change.

Gate 3 (analytics): how many rows were used (sample size and seed), which parts came from cache,
numeric columns, the strongest correlations (Pearson, Spearman) and categorical associations
(Cramér's V, correlation ratio), clusters, anomalies, drivers, segments and the time series.
Gate 4 (insights): each insight's effect, confidence with its interval, relevance and score, and
after a refine what was added, dropped and re-ranked against the previous set.
Gate 5 (actions): expected impact in the goal's unit, confidence, effort and priority.

Answers are parsed by pure functions that raise `ValueError` with a message a person can act on,
so the prompt can say what was wrong and ask again.
"""

import datetime as dt
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from lockflow.common.kinds import category_label, insight_label, strategy_facts
from lockflow.common.models import AnalyticsParams
from lockflow.common.pipeline import InsightRefinement
from lockflow.tables import Col, print_fitted

TOP_PAIRS = 5
TOP_DRIVERS = 5
TOP_SEGMENTS = 3
TOP_BREAKS = 3


def fmt(value: Any) -> str:
    """A value for a table cell: 4 significant digits for floats, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _say(console: Console, line: str) -> None:
    """A line of data text, printed as it is (a '[/x]' in a column name must not raise MarkupError)."""
    console.print(line, markup=False, highlight=False)


# ---- gate 2 ------------------------------------------------------------------------------------


def show_quality(ctx: dict[str, Any], console: Console) -> None:
    """Gate 2: the findings (label, dimension, severity, share) and the fixes offered for each."""
    title = f"quality score {ctx['score']}"
    if ctx.get("as_of"):
        title += f", data judged as of {ctx['as_of']}"
    rows = [
        [
            str(i),
            f["id"],
            category_label(f["category"]),
            f.get("dimension") or "-",
            f["severity"],
            str(f["count"]),
            f"{f['share']:.1%}",
            f["resolutions"][0]["strategy"] if f["resolutions"] else "-",
        ]
        for i, f in enumerate(ctx["findings"], start=1)
    ]
    columns = [
        Col("#"),
        Col("finding"),
        Col("category", 5),
        Col("dimension", 6),
        Col("severity", 3),
        Col("rows", 2),
        Col("share", 4),
        Col("top fix", 1),
    ]
    print_fitted(console, columns, rows, title=title)
    fixes = []
    for i, f in enumerate(ctx["findings"], start=1):
        for r in f["resolutions"]:
            facts = strategy_facts(r["strategy"])
            fixes.append([str(i), r["strategy"], facts.risk, facts.changes, facts.description])
    if fixes:
        columns = [Col("#"), Col("fix"), Col("risk"), Col("changes", 2), Col("what it does", 1, wrap=True)]
        print_fitted(console, columns, fixes, title="fixes offered (the first is the top fix)")


# ---- gate 3 ------------------------------------------------------------------------------------


def show_analytics(ctx: dict[str, Any], console: Console) -> None:
    """Gate 3: every analysis part that was computed, with sampling and cache stated."""
    a = ctx["analytics"]
    _say(console, a.get("sample_note") or f"{a['rows_used']} of {a['rows_total']} rows used")
    if a.get("sampled"):
        _say(console, f"sample: {a['rows_used']:,} rows, seed {a['seed']}")
    _say(console, _cache_line(ctx, a.get("parts", [])))
    rows = [
        [c["name"], *(fmt(c[k]) for k in ("mean", "std", "min", "max"))]
        for c in a["columns"]
        if c["kind"] == "numeric"
    ]
    columns = [Col("column"), Col("mean", 1), Col("std", 3), Col("min", 2), Col("max", 2)]
    print_fitted(console, columns, rows, title=f"{a['rows_used']} of {a['rows_total']} rows")
    _show_correlations(a, console)
    _show_clusters(a.get("clustering"), console)
    _show_anomalies(a.get("anomalies"), console)
    _show_drivers(a.get("drivers"), console)
    _show_segments(a.get("segments") or [], console)
    _show_time_series(a.get("time_series"), console)


def _cache_line(ctx: dict[str, Any], parts: list[str]) -> str:
    hits = ctx.get("parts_cached") or []
    if ctx.get("cached"):
        return f"served from cache: all {len(parts)} parts ({', '.join(parts)})"
    if hits:
        fresh = [p for p in parts if p not in hits]
        return f"from cache: {', '.join(hits)}; computed now: {', '.join(fresh) or '-'}"
    return f"computed now: {', '.join(parts) or '-'} (nothing from cache)"


def _show_correlations(a: dict[str, Any], console: Console) -> None:
    pairs = sorted(a.get("correlations") or [], key=lambda p: -abs(p["pearson"]))[:TOP_PAIRS]
    if pairs:
        rows = [[p["a"], p["b"], fmt(p["pearson"]), fmt(p.get("spearman")), str(p["n"])] for p in pairs]
        columns = [Col("a"), Col("b"), Col("pearson"), Col("spearman", 1), Col("n", 2)]
        print_fitted(console, columns, rows, title="strongest correlations")
    assoc = sorted(a.get("associations") or [], key=lambda p: -p["value"])[:TOP_PAIRS]
    if assoc:
        rows = [
            [
                p["a"],
                p["b"],
                "Cramér's V" if p["measure"] == "cramers_v" else "correlation ratio",
                fmt(p["value"]),
                fmt(p.get("p_value")),
                str(p["n"]),
            ]
            for p in assoc
        ]
        columns = [Col("a"), Col("b"), Col("measure", 1), Col("value"), Col("p", 2), Col("n", 3)]
        print_fitted(console, columns, rows, title="strongest categorical associations")


def _show_clusters(k: dict[str, Any] | None, console: Console) -> None:
    if not k:
        return
    sizes = ", ".join(f"#{c['cluster']}: {c['size']}" for c in k["clusters"])
    _say(
        console,
        f"clusters: k={k['k']} ({k['chosen_by']}), silhouette={fmt(k['silhouette'])}, "
        f"on {', '.join(k['features'])}; sizes {sizes}",
    )


def _show_anomalies(found: dict[str, Any] | None, console: Console) -> None:
    if not found:
        return
    shifted = ", ".join(f"{c} (+{v:.2g} |z|)" for c, v in list(found["feature_shift"].items())[:3])
    _say(
        console,
        f"anomalies: {found['count']} of {found['rows_scored']} rows ({found['share']:.2%}) at "
        f"contamination {fmt(found['contamination'])}; most unusual in: {shifted or '-'}",
    )


def _show_drivers(drivers: dict[str, Any] | None, console: Console) -> None:
    if not drivers:
        return
    rows = [
        [
            str(d["rank"]),
            d["column"],
            fmt(d["permutation_importance"]),
            fmt(d["permutation_std"]),
            fmt(d["mutual_info"]),
        ]
        for d in drivers["drivers"][:TOP_DRIVERS]
    ]
    columns = [
        Col("rank"),
        Col("column"),
        Col("permutation importance"),
        Col("± std", 2),
        Col("mutual info", 1),
    ]
    title = (
        f"drivers of {drivers['target']} ({drivers['model']}, held-out R² {fmt(drivers.get('holdout_r2'))})"
    )
    print_fitted(console, columns, rows, title=title)


def _show_segments(segments: list[dict[str, Any]], console: Console) -> None:
    ranked = sorted(segments, key=lambda s: -s["eta_squared"])[:TOP_SEGMENTS]
    if not ranked:
        return
    rows = []
    for s in ranked:
        far = max(s["groups"], key=lambda g: abs(g.get("diff_pct") or 0.0), default=None)
        rows.append(
            [
                s["column"],
                fmt(s["eta_squared"]),
                fmt(s["p_value"]),
                str(far["value"]) if far else "-",
                f"{far['diff_pct']:+.1f}%" if far and far.get("diff_pct") is not None else "-",
                fmt(far.get("cohens_d")) if far else "-",
            ]
        )
    columns = [
        Col("column"),
        Col("eta²", 1),
        Col("p", 2),
        Col("furthest group", 1),
        Col("vs rest", 1),
        Col("Cohen's d", 3),
    ]
    print_fitted(console, columns, rows, title="segments")


def _show_time_series(ts: dict[str, Any] | None, console: Console) -> None:
    if not ts:
        return
    season = ""
    if ts["season_period"]:
        season = f", season {ts['season_period']} (strength {fmt(ts['season_strength'])})"
    _say(
        console,
        f"time series: {ts['aggregate']} of {ts['value']} by {ts['date_column']} ({ts['freq']}), "
        f"{len(ts['periods'])} periods, trend {fmt(ts['trend_slope'])}/period (p {fmt(ts['trend_p_value'])})"
        + season,
    )
    for cp in ts.get("change_points", [])[:TOP_BREAKS]:
        change = f" ({cp['diff_pct']:+.1f}%)" if cp.get("diff_pct") is not None else ""
        _say(
            console,
            f"  trend break at {cp['at']}: mean {fmt(cp['mean_before'])} -> {fmt(cp['mean_after'])}"
            f"{change}, p {fmt(cp['p_value'])}",
        )


# ---- gate 4 ------------------------------------------------------------------------------------


def show_insights(ctx: dict[str, Any], console: Console) -> None:
    """Gate 4: ranked insights with effect, confidence and relevance; the change since a refine."""
    params = ctx.get("params") or {}
    goal = params.get("goal") or {}
    title = f"insights toward {goal.get('target') or '-'} ({goal.get('direction', '-')})"
    if params.get("alpha") is not None:
        title += f", alpha {fmt(params['alpha'])}"
    rows = [
        [
            str(i),
            ins["id"],
            insight_label(ins["kind"]),
            ins["statement"],
            fmt(ins["effect_size"]),
            fmt(ins.get("p_value")),
            _confidence(ins),
            _interval(ins),
            fmt(ins["relevance"]),
            fmt(ins["score"]),
        ]
        for i, ins in enumerate(ctx["insights"], start=1)
    ]
    columns = [
        Col("#", 5),  # the rank; the id names an insight
        Col("id"),
        Col("kind", 7),
        Col("insight", wrap=True, min_width=24),
        Col("effect", 1),
        Col("p", 2, short_for="confidence"),  # for narrow terminals
        Col("confidence", 4, wrap=True, min_width=14),
        Col("95% interval", 5, wrap=True, min_width=18),
        Col("relevance", 6),
        Col("score", 3),
    ]
    print_fitted(console, columns, rows, title=title)
    comparison = ctx.get("comparison")
    if comparison is not None:
        _say(console, comparison_text(comparison))


def _confidence(ins: dict[str, Any]) -> str:
    if ins.get("confidence") is None:
        return "untested"
    text = f"{ins['confidence']:.1%}"
    if ins.get("p_value") is not None:
        text += f" (p {fmt(ins['p_value'])})"
    return text + ("" if ins["significant"] else ", not significant")


def _interval(ins: dict[str, Any]) -> str:
    if ins.get("ci_low") is None or ins.get("ci_high") is None:
        return "-"
    of = f" {ins['ci_of']}" if ins.get("ci_of") else ""
    return f"[{fmt(ins['ci_low'])}, {fmt(ins['ci_high'])}]{of}"


def comparison_text(comparison: dict[str, Any]) -> str:
    """What changed against the previous insight set: added, dropped, re-ranked (with moves)."""
    moves = comparison.get("moves") or {}
    reranked = [f"{i} #{moves[i][0]}->#{moves[i][1]}" if i in moves else i for i in comparison["reranked"]]
    parts = [
        f"added: {', '.join(comparison['added']) or '-'}",
        f"dropped: {', '.join(comparison['dropped']) or '-'}",
        f"re-ranked: {', '.join(reranked) or '-'}",
    ]
    return "compared with the previous insights: " + "; ".join(parts)


# ---- gate 5 ------------------------------------------------------------------------------------


def show_actions(ctx: dict[str, Any], console: Console) -> None:
    """Gate 5: the recommended items with expected impact, confidence, effort and priority."""
    rows = [
        [
            str(i),
            item["id"],
            item["title"],
            expected_impact(item),
            f"{item['confidence']:.0%}",
            f"{item['effort']}/5",
            fmt(item["priority"]),
            ", ".join(item["evidence"]),
        ]
        for i, item in enumerate(ctx["items"], start=1)
    ]
    columns = [
        Col("#"),
        Col("id"),
        Col("action", wrap=True, min_width=24),
        Col("expected impact", 2),
        Col("confidence", 3),
        Col("effort", 4),
        Col("priority", 1),
        Col("evidence", 5, wrap=True, min_width=16),
    ]
    print_fitted(
        console, columns, rows, title="recommended actions (priority = impact x confidence / effort)"
    )


def expected_impact(item: dict[str, Any]) -> str:
    """The impact in the goal's unit when it could be estimated, else on the 0..1 scale."""
    if item.get("expected_impact") is not None:
        unit = f" {item['impact_unit']}" if item.get("impact_unit") else ""
        return f"{item['expected_impact']:,.4g}{unit}"
    return f"{fmt(item['impact'])} (0..1 scale)"


# ---- answers -----------------------------------------------------------------------------------

SELECTION_HELP = (
    "actions in priority order (numbers or ids, or 'all'); add an owner and due date as "
    "N=owner@YYYY-MM-DD, e.g. 2=ana@2027-01-31,1"
)


def parse_selection(text: str, items: list[dict[str, Any]], *, today: dt.date) -> dict[str, Any]:
    """Gate 5 'choose' parameters from e.g. `2=ana@2027-01-31,act-1`; ValueError says what is wrong."""
    ids = [item["id"] for item in items]
    if text.strip() == "all":
        return {"selected": ids}
    selected: list[str] = []
    owners: dict[str, str] = {}
    due: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        pick, eq, assign = part.partition("=")
        action = _action_id(pick.strip(), ids)
        if action in selected:
            raise ValueError(f"{action} is picked twice; give each action once")
        selected.append(action)
        if eq:
            owner, due_date = _assignment(assign.strip(), action, today)
            if owner:
                owners[action] = owner
            if due_date:
                due[action] = due_date
    return {"selected": selected, "owners": owners, "due": due}


def _action_id(pick: str, ids: list[str]) -> str:
    if pick in ids:
        return pick
    if pick.isdigit() and 1 <= int(pick) <= len(ids):
        return ids[int(pick) - 1]
    raise ValueError(f"{pick!r} is not an action; give numbers 1-{len(ids)} or ids like {ids[0]}")


def _assignment(text: str, action: str, today: dt.date) -> tuple[str, str | None]:
    owner, at, when = text.partition("@")
    owner = owner.strip()
    if not at and not owner:
        raise ValueError(f"{action}: write owner@YYYY-MM-DD, owner, or @YYYY-MM-DD after '='")
    if not at:
        return owner, None
    try:
        day = dt.date.fromisoformat(when.strip())
    except ValueError:
        raise ValueError(f"{action}: due date {when.strip()!r} is not a date like 2027-01-31") from None
    if day < today:
        raise ValueError(f"{action}: due date {day} is in the past (today is {today})")
    return owner, day.isoformat()


def parse_assignments(text: str) -> dict[str, str]:
    """`key=value` pairs separated by spaces (a value may itself contain '=')."""
    pairs: dict[str, str] = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        if not eq or not key or not value:
            raise ValueError(f"{word!r} is not key=value")
        pairs[key] = value
    return pairs


LIST_PARAMS = ("features", "steps")


def parse_analytics_params(text: str) -> dict[str, Any]:
    """Gate 3 'modify' parameters: a bare number of clusters or `key=value` pairs, checked here."""
    text = text.strip()
    raw: dict[str, Any] = (
        {"n_clusters": text} if text.isdigit() else dict(parse_assignments(text)) if text else {}
    )
    for key in LIST_PARAMS:
        if key in raw:
            raw[key] = [v for v in raw[key].split("+") if v]
    return _checked(AnalyticsParams, raw)


def parse_refinement(*, target: str, direction: str, extra: str) -> dict[str, Any]:
    """Gate 4 'refine' parameters: the goal and any thresholds (`alpha=0.01 top_n=5 ...`), checked."""
    raw: dict[str, Any] = {"goal": {"target": target.strip() or None, "direction": direction}}
    raw.update(parse_assignments(extra))
    return _checked(InsightRefinement, raw)


def _checked(model: Any, raw: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(model.model_fields))
    if unknown:
        raise ValueError(f"unknown parameter {', '.join(unknown)}; known: {', '.join(model.model_fields)}")
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}") from None
    return dict(parsed.model_dump(mode="json", include=set(raw)))
