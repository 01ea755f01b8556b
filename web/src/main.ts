// Entry point of the web chat.
import { setKeyPrompt } from "./api";
import { ChatApp } from "./chat-app";
import { askForGatewayKey, setUpKeyDialog } from "./dialogs";
import { placeIcons } from "./icons";
import { setUpTheme } from "./theme";

placeIcons();
setUpTheme();
setUpKeyDialog();
setKeyPrompt(askForGatewayKey);
void new ChatApp().start();
