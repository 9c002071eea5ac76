"""A new word in a text-to-image pipeline's vocabulary whose embedding alone can learn (textual inversion, Gal et al.
2023): the `--forget image=` path of text teachers learns it from the user's picture, and concept inversion
(`sfd-attack invert`) learns it from an attacker's images of an erased concept."""

from __future__ import annotations

import torch

from .prompts import DEFAULT_TEMPLATES

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


class PlaceholderToken:
    """`PLACEHOLDER` added to every tokenizer of a text-to-image pipeline, with one learnable fp32 row per text encoder
    (`rows`, starting from `start_row`) looked up wherever the word appears, through a forward hook on the encoder's
    input embeddings. Every encoder weight is frozen, so only the rows learn (and an optimiser keeps state for them
    alone, in fp32 whatever the encoders' dtype); `store()` writes them into the embedding tables and removes the
    hooks."""

    def __init__(self, pipe, start: str | None = None):
        self.pipe, self.rows, self._hooks = pipe, [], []
        for tokenizer, encoder in pipe.text_pairs():
            encoder.requires_grad_(False)
            tokenizer.add_tokens([PLACEHOLDER])
            token = tokenizer.convert_tokens_to_ids(PLACEHOLDER)
            if getattr(getattr(encoder, "text_model", None), "eos_token_id", None) == 2:
                # legacy CLIP configs pool at argmax(input ids), which the new (highest) id would take from EOS
                encoder.text_model.eos_token_id = encoder.config.eos_token_id = tokenizer.eos_token_id
            table = encoder.get_input_embeddings()
            row = start_row(tokenizer, table.weight.detach(), token, start).float().clone()
            if table.num_embeddings <= token:
                encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
                table = encoder.get_input_embeddings()
            self.rows.append(torch.nn.Parameter(row))
            self._hooks.append(table.register_forward_hook(self._lookup(token, self.rows[-1])))

    @staticmethod
    def _lookup(token: int, row: torch.Tensor):
        def replace(module, inputs, output):
            return torch.where((inputs[0] == token).unsqueeze(-1), row.to(output), output)

        return replace

    def store(self) -> None:
        """Write the learned rows into the encoders' tables (the word then works without the hooks) and remove them."""
        with torch.no_grad():
            for (tokenizer, encoder), row in zip(self.pipe.text_pairs(), self.rows):
                table = encoder.get_input_embeddings().weight
                table[tokenizer.convert_tokens_to_ids(PLACEHOLDER)] = row.to(table)
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def placeholder_prompts(n: int, gen: torch.Generator) -> list[str]:
    """`n` prompts of the learned word, each in a template (`prompts.DEFAULT_TEMPLATES`) drawn with `gen`."""
    picks = torch.randint(len(DEFAULT_TEMPLATES), (n,), generator=gen).tolist()
    return [DEFAULT_TEMPLATES[i].format(PLACEHOLDER) for i in picks]


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
