"""Generate the bundled sample dataset (deterministic): sales with planted problems and signals.

Signals: revenue rises with marketing_spend and falls with discount; region North sells ~30% less.
Problems: missing satisfaction scores, exact duplicate rows, a few non-numeric units, price outliers.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 4_000


def make_sample(rows: int = ROWS, seed: int = 7) -> pd.DataFrame:
    """The sample frame."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["North", "South", "East", "West"], size=rows)
    channel = rng.choice(["online", "retail", "partner"], size=rows, p=[0.5, 0.3, 0.2])
    marketing = rng.gamma(4.0, 250.0, size=rows).round(2)
    discount = rng.uniform(0, 0.3, size=rows).round(3)
    price = rng.normal(50, 8, size=rows).round(2)
    units = rng.poisson(20, size=rows)
    revenue = 2000 + 1.8 * marketing - 4000 * discount + rng.normal(0, 300, size=rows)
    revenue = np.where(region == "North", revenue * 0.7, revenue).round(2)
    satisfaction = rng.integers(1, 6, size=rows).astype(float)
    frame = pd.DataFrame(
        {
            "order_id": np.arange(1, rows + 1),
            "order_date": pd.date_range("2025-01-01", periods=rows, freq="2h").strftime("%Y-%m-%d"),
            "region": region,
            "channel": channel,
            "marketing_spend": marketing,
            "discount": discount,
            "price": price,
            "units": units.astype(str),
            "satisfaction": satisfaction,
            "revenue": revenue,
        }
    )
    frame.loc[rng.choice(rows, size=int(rows * 0.08), replace=False), "satisfaction"] = np.nan
    frame.loc[rng.choice(rows, size=12, replace=False), "units"] = "n/a"
    frame.loc[rng.choice(rows, size=20, replace=False), "price"] = rng.uniform(400, 900, size=20).round(2)
    duplicates = frame.sample(n=25, random_state=seed)
    return pd.concat([frame, duplicates], ignore_index=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("src/lockflow/data/sample_sales.csv")
    make_sample().to_csv(target, index=False)
    print(f"wrote {target}")
