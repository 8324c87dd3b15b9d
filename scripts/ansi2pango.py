#!/usr/bin/env python3
"""Turns a terminal capture with colours (`tmux capture-pane -e`) into Pango
markup, which ImageMagick renders to PNG (`convert pango:@FILE out.png`): the
README's screenshot of `syn watch` is a real terminal's screen, not a drawing.
Handles the SGR codes a capture holds: reset, bold, dim, the 8 + 8 colours and
the 256-colour palette's first 16."""
import html
import re
import sys

PALETTE = ["#45475a", "#f38ba8", "#a6e3a1", "#f9e2af", "#89b4fa", "#f5c2e7", "#94e2d5", "#bac2de",
           "#585b70", "#f38ba8", "#a6e3a1", "#f9e2af", "#89b4fa", "#f5c2e7", "#94e2d5", "#a6adc8"]
FOREGROUND = "#cdd6f4"
DIM = "#7f849c"
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def convert(text):
    out = []
    state = {"fg": None, "bold": False, "dim": False}

    def span(chunk):
        if not chunk:
            return
        fg = state["fg"] or (DIM if state["dim"] else FOREGROUND)
        weight = ' weight="bold"' if state["bold"] else ""
        out.append('<span foreground="%s"%s>%s</span>' % (fg, weight, html.escape(chunk)))

    for line in text.rstrip("\n").split("\n"):
        pos = 0
        for m in SGR.finditer(line):
            span(line[pos:m.start()])
            pos = m.end()
            codes = [int(c) if c else 0 for c in m.group(1).split(";")] or [0]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    state = {"fg": None, "bold": False, "dim": False}
                elif c == 1:
                    state["bold"] = True
                elif c == 2:
                    state["dim"] = True
                elif c == 22:
                    state["bold"] = state["dim"] = False
                elif 30 <= c <= 37:
                    state["fg"] = PALETTE[c - 30]
                elif 90 <= c <= 97:
                    state["fg"] = PALETTE[c - 90 + 8]
                elif c == 39:
                    state["fg"] = None
                elif c == 38 and i + 2 < len(codes) and codes[i + 1] == 5:
                    state["fg"] = PALETTE[codes[i + 2]] if codes[i + 2] < 16 else None
                    i += 2
                i += 1
        span(line[pos:])
        out.append("\n")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(convert(sys.stdin.read()))
