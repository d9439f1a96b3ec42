"""What an export job wrote: its batches' rows, split into files, and the bytes of each file.

The only importer of pyarrow and Faker: the seeded population (`population`, `hashing`, `pools`,
`records`, `events`), request -> batch spec (`spec`), row selection and counting (`selection`), projection
(`projection`), Parquet / JSON Lines rendering (`render`), file ids and names (`files`) and the caching
service (`service`). Import it lazily (see `Backend.exports`): pyarrow doubles the cold start.

Nothing is materialised ahead of time. A batch's rows are the profiles of the tenant's population that the
job's request selects, in population order. Counting them (for the job's counters and the batch's
`recordCount`) streams over the population block by block and keeps only a count per block; a file is
generated when it is first fetched, from the blocks that hold its rows, and kept in a small LRU cache of
file bytes. Memory therefore depends on the file size, never on the export size.

Every byte is a function of (seed, tenant, scenario's profiles block, job request, file index), so it is
the same in any fetch order and across restarts.
"""

from emulator.exportdata.files import ExportFile
from emulator.exportdata.preview import Preview
from emulator.exportdata.service import Exports

__all__ = ["ExportFile", "Exports", "Preview"]
