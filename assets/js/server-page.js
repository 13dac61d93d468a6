// Pages the portal renders on the server (portal_core/web/html.py) draw their chrome in HTML; this wires
// what needs a script: the phone-width menu button, and progress for a file request's form.

import { wireMenu } from './layout.js';

wireMenu();
if (document.querySelector('form[data-enhance="upload-progress"]')) import('./request-upload.js');
