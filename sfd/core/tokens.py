"""A new word in a text-to-image pipeline's vocabulary whose embedding alone can learn (textual inversion, Gal et al.
2023): the `--forget image=` path of text teachers learns it from the user's picture, and concept inversion
(`sfd-attack invert`) learns it from an attacker's images of an erased concept."""

from __future__ import annotations

import torch

PLACEHOLDER = "sfdconcept"  # the learned token; a plain word so prompts and rewrite rules treat it as one


def start_row(tokenizer, table: torch.Tensor, token: int, start: str | None) -> torch.Tensor:
    """Where the new row (id `token`) starts: the mean of `start`'s token rows (a one-token word: that word's own row),
    or the mean of the vocabulary's rows before it."""
    if start is None:
        return table[: min(len(table), token)].mean(0)
    ids = tokenizer(start, add_special_tokens=False).input_ids
    if not ids:
        raise ValueError(f"the tokenizer turns {start!r} into no tokens")
    return table[ids].mean(0)


def add_placeholder_token(pipe, start: str | None = None) -> list[torch.nn.Parameter]:
    """Add `PLACEHOLDER` to every tokenizer and a row for it to every text encoder, starting from `start_row`; every
    encoder weight is frozen and the encoders' input-embedding tables are returned, of which only the new rows learn."""
    weights = []
    for tokenizer, encoder in pipe.text_pairs():
        encoder.requires_grad_(False)
        tokenizer.add_tokens([PLACEHOLDER])
        token = tokenizer.convert_tokens_to_ids(PLACEHOLDER)
        initial = start_row(tokenizer, encoder.get_input_embeddings().weight.detach(), token, start)
        if getattr(getattr(encoder, "text_model", None), "eos_token_id", None) == 2:
            # legacy CLIP configs pool at argmax(input ids), which the new (highest) id would take from EOS
            encoder.text_model.eos_token_id = encoder.config.eos_token_id = tokenizer.eos_token_id
        table = encoder.get_input_embeddings()
        if table.num_embeddings <= token:
            encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            table = encoder.get_input_embeddings()
        with torch.no_grad():
            table.weight[token] = initial  # a fresh start, also when the token is already there
        mask = torch.zeros_like(table.weight[:, :1])
        mask[token] = 1
        table.weight.requires_grad_(True)
        table.weight.register_hook(lambda grad, mask=mask: grad * mask.to(grad))  # only the new row learns
        weights.append(table.weight)
    return weights


def placeholder_rows(pipe) -> list[torch.Tensor]:
    """The learned token's current embedding row in every text encoder (detached copies)."""
    return [
        encoder.get_input_embeddings().weight[tokenizer.convert_tokens_to_ids(PLACEHOLDER)].detach().clone()
        for tokenizer, encoder in pipe.text_pairs()
    ]


def nearest_words(pipe, k: int = 5) -> list[tuple[str, float]]:
    """The vocabulary words (whole-word tokens of the first tokenizer) whose input embeddings are closest in cosine to
    the learned token's."""
    tokenizer, encoder = pipe.text_pairs()[0]
    table = encoder.get_input_embeddings().weight.detach()
    token = tokenizer.convert_tokens_to_ids(PLACEHOLDER)
    cos = torch.nn.functional.cosine_similarity(table, table[token : token + 1], dim=-1)
    ranked = []
    for i in cos.argsort(descending=True).tolist():
        word = tokenizer.convert_ids_to_tokens(i)
        if i == token or not word.endswith("</w>") or not word[:-4].isalpha() or len(word) < 6:  # 2+ letters
            continue
        ranked.append((word[:-4], round(float(cos[i]), 4)))
        if len(ranked) == k:
            break
    return ranked
