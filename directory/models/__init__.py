from .intercom import IntercomContact
from .members import Facility, Member, Position, Region, SyncCursor
from .source import SourceFacility, SourceMember, SourceModel, SourcePosition, SourceRegion

__all__ = [
    "Facility",
    "IntercomContact",
    "Member",
    "Position",
    "Region",
    "SourceFacility",
    "SourceMember",
    "SourceModel",
    "SourcePosition",
    "SourceRegion",
    "SyncCursor",
]
