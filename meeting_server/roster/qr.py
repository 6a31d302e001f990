"""QR codes of join links, and the printable A4 sheet of seat cards."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg


def qr_png(data: str, box_size: int = 10) -> bytes:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=2)
    qr.add_data(data)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    return buf.getvalue()


def qr_svg(data: str) -> bytes:
    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


def qr_terminal(data: str) -> str:
    """The QR code drawn with half-block characters, for a terminal."""
    qr = qrcode.QRCode(border=1)
    qr.add_data(data)
    qr.make(fit=True)
    m = qr.get_matrix()
    if len(m) % 2:
        m.append([False] * len(m[0]))
    lines = []
    for y in range(0, len(m), 2):
        row = []
        for top, bottom in zip(m[y], m[y + 1], strict=True):
            row.append({(True, True): " ", (True, False): "▄", (False, True): "▀", (False, False): "█"}[(top, bottom)])
        lines.append("".join(row))
    return "\n".join(lines)


def seat_cards_pdf(meeting_title: str, cards: list[dict], org_name: str = "") -> bytes:
    """A4 sheet, 2 x 4 cards per page: name, seat, role, QR code of the join link."""
    import pymupdf

    font = pymupdf.Font("cjk")
    doc = pymupdf.open()
    w, h = pymupdf.paper_size("a4")
    cols, rows, margin = 2, 4, 28
    cw, ch = (w - 2 * margin) / cols, (h - 2 * margin) / rows
    role_names = {"attendee": "参会人 Attendee", "chair": "主持人 Chair", "presenter": "主讲人 Presenter",
                  "secretary": "秘书 Secretary", "observer": "列席 Observer"}
    page = None
    for i, card in enumerate(cards):
        if i % (cols * rows) == 0:
            page = doc.new_page(width=w, height=h)
            page.insert_font(fontname="cjk", fontbuffer=font.buffer)
        k = i % (cols * rows)
        x0, y0 = margin + (k % cols) * cw, margin + (k // cols) * ch
        rect = pymupdf.Rect(x0 + 4, y0 + 4, x0 + cw - 4, y0 + ch - 4)
        page.draw_rect(rect, color=(0.6, 0.6, 0.6), width=0.6, dashes="[3] 0")
        qr_size = ch - 40
        page.insert_image(pymupdf.Rect(rect.x0 + 8, rect.y0 + 8, rect.x0 + 8 + qr_size, rect.y0 + 8 + qr_size),
                          stream=qr_png(card["join_url"], box_size=6))
        tx = rect.x0 + qr_size + 16
        page.insert_text((tx, rect.y0 + 34), card["name"][:12], fontname="cjk", fontsize=20)
        page.insert_text((tx, rect.y0 + 62), f"座位 Seat: {card.get('seat') or '-'}", fontname="cjk", fontsize=12)
        page.insert_text((tx, rect.y0 + 82), role_names.get(card.get("role", ""), card.get("role", "")), fontname="cjk", fontsize=10)
        page.insert_text((rect.x0 + 8, rect.y1 - 22), meeting_title[:40], fontname="cjk", fontsize=9, color=(0.3, 0.3, 0.3))
        page.insert_text((rect.x0 + 8, rect.y1 - 10), "扫码入会 Scan to join" + (f" · {org_name}" if org_name else ""),
                         fontname="cjk", fontsize=8, color=(0.4, 0.4, 0.4))
    if page is None:
        page = doc.new_page(width=w, height=h)
        page.insert_font(fontname="cjk", fontbuffer=font.buffer)
        page.insert_text((margin, margin + 20), "暂无参会人 No attendees yet", fontname="cjk", fontsize=14)
    doc.subset_fonts()
    return doc.tobytes(garbage=3, deflate=True)
