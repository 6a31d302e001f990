from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Login(Strict):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class UserCreate(Strict):
    username: str = Field(min_length=1, max_length=80, pattern=r"^[\w.@+-]+$")
    password: str = Field(min_length=8, max_length=200)
    role: Literal["admin", "organizer"] = "organizer"
    display_name: str = Field(default="", max_length=120)


class Empty(Strict):
    pass
