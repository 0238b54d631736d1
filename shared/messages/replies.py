"""The error frame either side sends for a request it cannot serve or a frame it cannot read."""

from typing import Literal

from shared.errors import ErrorBody
from shared.wire import WireModel


class ErrorMessage(WireModel):
    """Error reply; ``re`` names the frame it answers, or is null when that frame had no id."""

    type: Literal["error"] = "error"
    id: int
    re: int | None = None
    error: ErrorBody
