"""Verification routes: QR, SUN (JSON), reader-tap challenges and card proofs, the trust bundle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from sqlmodel import Session

from cardsvc.api.auth import client_of
from cardsvc.api.hotpath import checked_then_committed
from cardsvc.api.verify_schemas import (
    OUTCOME_ERRORS,
    SUN_PARAM_PATTERN,
    CardVerifyRequest,
    ChallengeResponse,
    QrVerifyRequest,
    VerifyResponse,
    verification_of,
)
from cardsvc.errors import InvalidRecord
from cardsvc.registry import card_repo
from cardsvc.verification.service import CHALLENGE_TTL, CardAnswer
from cardsvc.verification.views import member_view

router = APIRouter(prefix="/v1", tags=["verification"], responses=OUTCOME_ERRORS)

SUN_PARAM = Annotated[str, Query(pattern=SUN_PARAM_PATTERN.pattern)]
BUNDLE_MEDIA_TYPE = 'application/cose; cose-type="cose-sign1"'


@router.post("/verify/qr", name="verify_qr", response_model=VerifyResponse)
async def verify_qr(body: QrVerifyRequest, request: Request) -> VerifyResponse:
    """Verify a QR credential: signature checklist, live card and member status, audit row."""
    client, svc = client_of(request), verification_of(request)
    return await checked_then_committed(svc, client, lambda s: svc.check_qr(s, actor=client.client_id,
                                                                               qr_text=body.qr))


@router.get("/verify/sun", name="verify_sun_json", response_model=VerifyResponse)
async def verify_sun_json(request: Request, p: SUN_PARAM, m: SUN_PARAM) -> VerifyResponse:
    """Verify a phone tap's SUN parameters (``p`` PICCData, ``m`` SDMMAC) as the tapped URL has them."""
    client, svc = client_of(request), verification_of(request)
    return await checked_then_committed(svc, client, lambda s: svc.check_sun_params(
        s, actor=client.client_id, picc=p, mac=m))


@router.post("/challenges", name="challenges_create", response_model=ChallengeResponse, status_code=201)
async def challenges_create(request: Request) -> ChallengeResponse:
    """A single-use nonce for a reader tap; it expires after 60 seconds."""
    client, svc = client_of(request), verification_of(request)
    challenge = await svc.db.run(lambda s: svc.create_challenge(s, client_id=client.client_id))
    return ChallengeResponse(challenge=challenge.nonce.hex(), expires_at=challenge.expires_at,
                             ttl_seconds=int(CHALLENGE_TTL.total_seconds()))


def _hex(value: str, field: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidRecord("not hex", field=field, reason="hex") from None


def _answer(body: CardVerifyRequest) -> CardAnswer:
    payload = _hex(body.payload, "payload") if body.kind == "internal_auth" else body.payload.encode()
    return CardAnswer(challenge=_hex(body.challenge, "challenge"), uid=_hex(body.uid, "uid"), kind=body.kind,
                      payload=payload,
                      credential=None if body.credential is None else _hex(body.credential, "credential"))


@router.post("/verify/card", name="verify_card", response_model=VerifyResponse)
async def verify_card(body: CardVerifyRequest, request: Request) -> VerifyResponse:
    """Verify a reader tap: our challenge answered by the card (or its SUN read) plus its credential."""
    client, svc = client_of(request), verification_of(request)
    answer = _answer(body)

    def work(session: Session) -> VerifyResponse:
        result = svc.verify_card(session, actor=client.client_id, answer=answer)
        return VerifyResponse.of(result, member_view(session, result, client, svc.cipher, tz=svc.zone))

    return await svc.db.run(work)


@router.get("/trust-bundle", name="trust_bundle", response_class=Response,
            responses={200: {"content": {BUNDLE_MEDIA_TYPE: {}}, "description": "the signed bundle"},
                       304: {"description": "the bundle named by If-None-Match is current"}})
async def trust_bundle(request: Request,
                       if_none_match: Annotated[str | None, Header(max_length=200)] = None) -> Response:
    """The signed trust bundle (issuer keys + card numbers that must not verify) for offline use."""
    svc = verification_of(request)
    if svc.bundles is None:
        raise InvalidRecord("this server signs no trust bundles", field="bundle", reason="no_bundle_key")
    revoked = await svc.db.run(card_repo.revoked_card_numbers)
    bundles = svc.bundles
    signed = bundles.get(revoked)
    headers = {"ETag": signed.etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and signed.etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(signed.raw, media_type=BUNDLE_MEDIA_TYPE, headers=headers)
