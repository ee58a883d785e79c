"""The results model: a comparison is a titled list of rows, one row per tool.

A row holds the raw samples of one tool (seconds, or MiB for memory rows),
or says why it has none: "skipped" (the tool could not be installed or
found), "not available" (jobctl does not have that feature yet), or
"failed" (the tool was there but the work did not complete). The median,
the spread ((max - min) / median over the repetitions) and the ratio to the
comparison's baseline row (measured in the same run) are derived from the
samples, never entered by hand.
"""

import statistics

OK = "ok"
SKIPPED = "skipped"
NOT_AVAILABLE = "not available"
FAILED = "failed"


class Row:
    """One tool's figures in one comparison."""

    def __init__(self, tool, unit="s", per=1, note=None):
        self.tool = tool
        # "s" (wall-clock seconds per repetition), "MiB" or "ns" (criterion).
        self.unit = unit
        # Samples are divided by `per` for display (e.g. per job).
        self.per = per
        self.note = note
        self.samples = []
        self.status = OK
        self.reason = None
        self.baseline = False
        # For criterion rows: the summary comes from criterion itself.
        self.fixed = None
        self.ratio_to = None
        self.ratio = None

    def skip(self, status, reason):
        """Marks the row as having no figures, with the reason."""
        self.status = status
        self.reason = " ".join(str(reason).split())[:300]
        return self

    def summary(self):
        """(median, min, max) per `per`, or None."""
        if self.fixed is not None:
            return self.fixed
        if self.status != OK or not self.samples:
            return None
        vals = [s / self.per for s in self.samples]
        return statistics.median(vals), min(vals), max(vals)

    def spread(self):
        """(max - min) / median, or None."""
        s = self.summary()
        if s is None or s[0] == 0:
            return None
        return (s[2] - s[1]) / s[0]

    def to_json(self):
        s = self.summary()
        return {
            "tool": self.tool,
            "status": self.status,
            "reason": self.reason,
            "unit": display_unit(self),
            "baseline": self.baseline,
            "repetitions": len(self.samples) if self.fixed is None else None,
            "samples": [v / self.per for v in self.samples],
            "median": s[0] if s else None,
            "min": s[1] if s else None,
            "max": s[2] if s else None,
            "spread": self.spread(),
            "ratio": self.ratio,
            "ratio_to": self.ratio_to,
            "note": self.note,
        }


def display_unit(row):
    """The unit of the row's displayed figures."""
    if row.unit == "s" and row.per != 1:
        return "s/job"
    return row.unit


# The comparisons' numbers, as the README lists them.
NUMBERS = {
    "trivial": "1",
    "scale": "2",
    "library": "3",
    "output": "4",
    "remote_fanout": "5a",
    "remote_sequential": "5b",
    "remote_spread": "5c",
    "remote_scale": "5d",
    "remote_scale_cpu": "5e",
    "chain": "6",
    "batch": "7a",
    "batch_large": "7b",
    "executors": "8",
}


class Comparison:
    """A titled group of rows doing the same work, with one baseline."""

    def __init__(self, key, title, work):
        self.key = key
        self.number = NUMBERS.get(key, "?")
        self.title = title
        self.work = work
        self.rows = []
        self.notes = []
        self.baseline_tool = None

    def row(self, tool, **kw):
        """Adds and returns a new row."""
        r = Row(tool, **kw)
        self.rows.append(r)
        return r

    def set_baseline(self, row):
        """Makes `row` the one the others are divided by."""
        row.baseline = True
        self.baseline_tool = row.tool

    def finish(self):
        """Computes every row's ratio to the baseline (if both have figures)."""
        if self.baseline_tool is None:
            return  # rows carry their own ratios (or none)
        base = next((r for r in self.rows if r.tool == self.baseline_tool), None)
        bs = base.summary() if base else None
        for r in self.rows:
            if r.ratio is not None:
                continue  # set by the comparison itself (criterion rows)
            s = r.summary()
            if s and bs and bs[0] > 0 and r.unit == base.unit:
                r.ratio = s[0] / bs[0]
                r.ratio_to = base.tool

    def to_json(self):
        return {
            "key": self.key,
            "number": self.number,
            "title": self.title,
            "work": self.work,
            "baseline": self.baseline_tool,
            "notes": self.notes,
            "rows": [r.to_json() for r in self.rows],
        }
