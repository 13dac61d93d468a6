// Copying a link from a read-only text field: the clipboard when the browser allows it, else the field's
// text selected so Ctrl+C (or a long press) copies it.

/** Copy `field`'s value and say how in `status` (a role="status" element). */
export async function copyField(field, status) {
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = 'Copied to the clipboard.';
  } catch (_) {
    field.focus();
    field.select();
    status.textContent = 'Press Ctrl+C (or ⌘C) to copy the selected link.';
  }
}
