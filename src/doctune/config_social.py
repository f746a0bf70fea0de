"""Config section ``social``: importing Mastodon and Twitter archives into ``posts``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SocialConfig(BaseModel):
    """Importing Mastodon and Twitter archives into ``posts``."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    include_direct_messages: bool = Field(
        False,
        description="Import direct messages (Twitter direct-messages.js, Mastodon direct-visibility posts); they are "
        "counted and left out by default.",
    )
    feeds: list[str] = Field(
        default_factory=list,
        description="Feed or timeline files to resolve replies' parents and liked posts from, and to import as posts "
        "of kind feed: Mastodon API status lists (JSON), ActivityPub objects or collections, tweet lists.",
    )
    resolve_network: bool = Field(
        False,
        description="Fetch the text of still-unresolved Mastodon posts from their server's public status API "
        "(GET https://<host>/api/v1/statuses/<id>); nothing is fetched unless this is true.",
    )
    network_requests_per_minute: int = Field(
        60, ge=1, description="Rate limit of status API requests (all servers together)."
    )
    network_timeout_s: float = Field(10.0, gt=0, description="Timeout of one status API request, in seconds.")
    network_max_requests: int = Field(
        1000, ge=0, description="At most this many status API requests per import; the rest stay unresolved."
    )
    scrub_emails: bool = Field(
        True, description="scrub_text replaces e-mail addresses by [email] (training examples, exports)."
    )
    scrub_phones: bool = Field(
        True,
        description="scrub_text replaces phone numbers (9 digits or more) by [phone] (training examples, exports).",
    )
    scrub_handles: bool = Field(
        False, description="scrub_text replaces other people's @handles by @user (the owner's own handles are kept)."
    )
