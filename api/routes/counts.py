"""Top hashtags and words, all time: sorted by count descending, then key ascending."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ..deps import Conn

router = APIRouter(prefix="/api", tags=["counts"])

Limit = Annotated[int, Query(ge=1, le=1000, description="how many rows, 1 to 1000")]


class HashtagCount(BaseModel):
    hashtag: str
    count: int


class WordCount(BaseModel):
    word: str
    count: int


# COLLATE "C": ties ordered by code point, the same on every machine.
TOP_HASHTAGS = 'SELECT hashtag, count FROM hashtag_counts ORDER BY count DESC, hashtag COLLATE "C" LIMIT %s'
TOP_WORDS = 'SELECT word, count FROM unigram_counts ORDER BY count DESC, word COLLATE "C" LIMIT %s'


@router.get("/hashtags", response_model=list[HashtagCount])
def top_hashtags(conn: Conn, limit: Limit = 20) -> list[HashtagCount]:
    rows = conn.execute(TOP_HASHTAGS, (limit,)).fetchall()
    return [HashtagCount(hashtag=h, count=c) for h, c in rows]


@router.get("/unigrams", response_model=list[WordCount])
def top_unigrams(conn: Conn, limit: Limit = 20) -> list[WordCount]:
    rows = conn.execute(TOP_WORDS, (limit,)).fetchall()
    return [WordCount(word=w, count=c) for w, c in rows]
