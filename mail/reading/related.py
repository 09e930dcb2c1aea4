"""The Email related list of a Lead or Contact: what the viewer may see, one page, a fixed number of
queries (mail/reading/conversations.py), with the viewer's mode and Share Email box."""
from __future__ import annotations

from mail.reading import addon, conversations, sharing
from models import User


def list_context(viewer: User, record_id: int, page: int = 1) -> dict:
    """Everything the related list shows the viewer: one page of conversations, their mode, their
    Share Email box. What ticking the box would do is not part of it (share_effect: on request)."""
    return {"emails": conversations.related_conversations(viewer, record_id, page),
            "my_mode": sharing.mode_of(viewer.id), "share_email": addon.is_shared(viewer, record_id),
            "share_effect": None}


def share_effect(viewer: User, record_id: int) -> addon.Effect:
    """What ticking (or unticking) the viewer's Share Email box on the record would do: asked only
    when the viewer asks, since it counts their mail on the record twice."""
    return addon.share_preview(viewer, record_id, not addon.is_shared(viewer, record_id))
