"""The ``session`` object every event carries."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from voxflow.protocol.enums import Direction


class Session(BaseModel):
    """Identity of one call as the assistant sees it; echo ``id`` as ``session_id`` in actions.

    Numbers are E.164 strings (voxflow sends them with a leading ``+`` by default). Unknown keys
    are kept, so a newer service adding fields does not break an older assistant.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    account_id: str = ""
    phone_number: str = ""
    direction: Direction = Direction.INBOUND
    from_phone_number: str = ""
    to_phone_number: str = ""
