"""The data converter every client, worker and replayer of this project uses.

Temporal's pydantic converter, with one change: its cache of pydantic
``TypeAdapter``s is shared by the whole process. The SDK builds a payload
converter for every workflow it loads, so with the stock class each new case
built its own adapters (for ``list[RecordedEvent]``, ``EscalationState``...)
from scratch and kept them for as long as the case stayed cached.
"""

from __future__ import annotations

import functools

from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import DataConverter

# Thread-safe, and TypeAdapters are immutable: safe to share across workflow threads.
_shared_type_adapter = functools.lru_cache(maxsize=1024)(TypeAdapter)


class SharedCachePydanticPayloadConverter(PydanticPayloadConverter):
    def __init__(self) -> None:
        super().__init__()
        for converter in self.converters.values():
            if isinstance(converter, PydanticJSONPlainPayloadConverter):
                converter._type_adapter = _shared_type_adapter  # noqa: SLF001 - the one thing we change


data_converter = DataConverter(payload_converter_class=SharedCachePydanticPayloadConverter)
