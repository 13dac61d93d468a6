// Pages the portal renders on the server (portal_core/web/html.py) draw their chrome in HTML; this wires
// what needs a script: the phone-width menu button.

import { wireMenu } from './layout.js';

wireMenu();
