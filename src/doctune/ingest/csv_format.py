"""CSV: markdown tables of ``cfg.csv_rows_per_block`` data rows each, the header row repeated in every block.

Blocks are separated by a blank line; each gets a ``SourceSpan`` with locator ``rows A-B`` (1-based data rows,
counting only non-blank rows).
"""

from __future__ import annotations

import csv
import io

from doctune.config import IngestConfig
from doctune.ingest.base import Extracted, SourceFile, UnreadableFileError
from doctune.records import SourceSpan

SNIFF_SAMPLE_CHARS = 64 * 1024
SNIFF_DELIMITERS = ",;\t|"
BLOCK_SEPARATOR = "\n\n"


def read_csv(source: SourceFile, cfg: IngestConfig) -> Extracted:
    """Render the rows of a CSV file as markdown table blocks."""
    rows = parse_csv_rows(source.text)
    if not rows:
        raise UnreadableFileError("empty CSV (no rows)")
    header, data = rows[0], rows[1:]
    if not data:
        raise UnreadableFileError("CSV has a header row but no data rows")
    width = max(len(row) for row in rows)
    header = [cell or f"column {i}" for i, cell in enumerate(_pad(header, width), start=1)]
    header_lines = _table_row(header) + "\n" + _table_row(["---"] * width)

    blocks: list[str] = []
    spans: list[SourceSpan] = []
    offset = 0
    for first in range(0, len(data), cfg.csv_rows_per_block):
        block_rows = data[first : first + cfg.csv_rows_per_block]
        block = header_lines + "".join("\n" + _table_row(_pad(row, width)) for row in block_rows)
        if blocks:
            offset += len(BLOCK_SEPARATOR)
        last = first + len(block_rows)
        spans.append(SourceSpan(start=offset, end=offset + len(block), locator=f"rows {first + 1}-{last}"))
        blocks.append(block)
        offset += len(block)
    return Extracted(text=BLOCK_SEPARATOR.join(blocks), title=source.path.stem, spans=spans)


def parse_csv_rows(text: str) -> list[list[str]]:
    """Rows of ``text`` with the sniffed dialect (comma-separated if sniffing fails); blank rows are dropped."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), sniff_dialect(text)))
    except csv.Error as exc:
        raise UnreadableFileError(f"malformed CSV: {exc}") from exc
    cleaned = [[" ".join(cell.split()) for cell in row] for row in rows]
    return [row for row in cleaned if any(row)]


def sniff_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The dialect ``csv.Sniffer`` finds; failing that, comma-separated with the delimiter (of ``, ; tab |``)
    that is most frequent in the first line, which rescues files whose ragged rows confuse the sniffer."""
    sample = text[:SNIFF_SAMPLE_CHARS]
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFF_DELIMITERS)
    except csv.Error:
        pass
    first_line = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {delimiter: first_line.count(delimiter) for delimiter in SNIFF_DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d])
    if counts[delimiter] == 0 or delimiter == ",":
        return csv.excel
    return type("FirstLineDialect", (csv.excel,), {"delimiter": delimiter})


def _pad(row: list[str], width: int) -> list[str]:
    return row + [""] * (width - len(row))


def _table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
