"""Per-event decisions of a bulk replay, held as arrays: which rules hit, the action and the
obligations, decided through ``engine.decide.outcome`` (the live ladder) once per distinct set
of hits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guardrail.engine.decide import outcome
from guardrail.lang.pack import CLEARS_SUFFIX, Pack
from guardrail.model.decision import Action, Obligation

INTERCEPT_RANK = Action.INTERCEPT.rank
ACTIONS = tuple(Action)


@dataclass(frozen=True)
class Decisions:
    """Decisions of every screened row; ``combo[i]`` indexes the distinct hit sets."""

    rule_ids: tuple[str, ...]  # the pack's rules, in pack order
    combo: npt.NDArray[np.int64]  # per row; -1 for rows that were not screened
    combos: tuple[tuple[str, ...], ...]  # hit rule ids of each distinct set, in pack order
    combo_action: npt.NDArray[np.int8]  # action rank per distinct set
    combo_obligations: tuple[tuple[Obligation, ...], ...]

    @property
    def action_rank(self) -> npt.NDArray[np.int8]:
        """Action rank per row (proceed's rank for rows that were not screened)."""
        ranks = self.combo_action[np.maximum(self.combo, 0)]
        return np.where(self.combo >= 0, ranks, 0).astype(np.int8)

    def hit_matrix(self) -> npt.NDArray[np.bool_]:
        """rows × rules: whether the rule hit the row."""
        index = {rule_id: i for i, rule_id in enumerate(self.rule_ids)}
        table = np.zeros((len(self.combos) + 1, len(self.rule_ids)), dtype=bool)
        for row, hits in enumerate(self.combos):
            for rule_id in hits:
                table[row, index[rule_id]] = True
        return table[np.where(self.combo >= 0, self.combo, len(self.combos))]


def decided_rule_ids(engine_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The rule ids a decision lists as hits: matched and not cleared (as ``decide``)."""
    cleared = {i.removesuffix(CLEARS_SUFFIX) for i in engine_ids if i.endswith(CLEARS_SUFFIX)}
    return tuple(i for i in engine_ids if CLEARS_SUFFIX not in i and i not in cleared)


def decide_rows(
    pack: Pack, hits: npt.NDArray[np.bool_], screened: npt.NDArray[np.bool_]
) -> Decisions:
    """Decisions from a rows × rules hit matrix (columns in ``pack.engine_rules`` order);
    ``combos`` keep the engine ids, clearing conditions (``RULE#clears``) included."""
    return decide_packed(pack, np.packbits(hits, axis=1), screened)


def decide_packed(
    pack: Pack, packed: npt.NDArray[np.uint8], screened: npt.NDArray[np.bool_]
) -> Decisions:
    """``decide_rows`` from the hit matrix packed by ``np.packbits(hits, axis=1)``."""
    rule_ids = tuple(rule.id for rule in pack.engine_rules)
    rows = len(screened)
    if rows == 0 or not rule_ids:
        combos: tuple[tuple[str, ...], ...] = ((),)
        action, obligations = outcome(pack, ())
        combo = np.where(screened, 0, -1).astype(np.int64)
        return Decisions(rule_ids, combo, combos, np.array([action.rank], np.int8), (obligations,))
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    # most rows hit nothing: sort only the others' hit sets; set 0 is "no hit" (it sorts first)
    hit = np.flatnonzero(packed.any(axis=1))
    keys = packed[hit].view(np.dtype((np.void, packed.shape[1]))).reshape(-1)
    zero = np.zeros((1, packed.shape[1]), dtype=np.uint8).view(keys.dtype).reshape(-1)
    unique, hit_inverse = np.unique(np.concatenate([zero, keys]), return_inverse=True)
    inverse = np.zeros(rows, dtype=np.int64)
    inverse[hit] = hit_inverse.reshape(-1)[1:]
    unpacked = np.unpackbits(
        np.frombuffer(unique.tobytes(), dtype=np.uint8).reshape(len(unique), -1), axis=1
    )[:, : len(rule_ids)].astype(bool)
    combo_list: list[tuple[str, ...]] = []
    ranks = np.empty(len(unique), dtype=np.int8)
    owed: list[tuple[Obligation, ...]] = []
    for index, row in enumerate(unpacked):
        ids = tuple(rule_ids[i] for i in np.flatnonzero(row).tolist())
        action, obligations = outcome(pack, ids)
        combo_list.append(decided_rule_ids(ids))
        ranks[index] = action.rank
        owed.append(obligations)
    combo = np.where(screened, inverse, -1).astype(np.int64)
    return Decisions(rule_ids, combo, tuple(combo_list), ranks, tuple(owed))
